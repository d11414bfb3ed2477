"""Demo driver for scripts/demo.sh (see there): the air gap end to end on the project's
own example (manifests/example/), with real registries on 127.0.0.1 and images built
without Docker (test/integration/harness/example.py)."""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "test" / "integration"))

from harness import example, images  # noqa: E402
from harness.pki import make_ca  # noqa: E402
from harness.registry import start_registry  # noqa: E402
from harness.skopeo import Skopeo  # noqa: E402

MANIFEST = ROOT / "manifests" / "example" / "example.yaml"
BUNDLE = ROOT / "bundles" / "example-shop-0.1.0.tar.zst"
OFFLINE_OUT = ROOT / "bundles" / "example-shop-offline"


def step(text):
    print(f"\n==> {text}", flush=True)


def run(binary, *args, input=None):
    shown = [a if not str(a).startswith(str(ROOT) + "/") else str(Path(a).relative_to(ROOT)) for a in map(str, args)]
    print("    $ aas-bundle " + " ".join(shown), flush=True)
    p = subprocess.run([binary, *map(str, args)], input=input, text=True, capture_output=True)
    out = (p.stderr + p.stdout).rstrip()  # progress first, then the summary
    if out:
        print("\n".join("      " + line for line in out.splitlines()), flush=True)
    if p.returncode != 0:
        raise SystemExit(f"\ndemo FAILED: aas-bundle {args[0]} exited {p.returncode}")
    return p


def main(binary):
    work = Path(tempfile.mkdtemp(prefix="aas-bundle-demo-"))
    started = []
    try:
        step("starting two registries on 127.0.0.1")
        online = start_registry(work / "online", "plain")
        started.append(online)
        offline = start_registry(work / "offline", "tls-basic", ca=make_ca(work / "ca"))
        started.append(offline)
        print(f"    online  (mirror of docker.io, gcr.io, quay.io, registry.example.io; plain HTTP): {online.url}")
        print(f"    offline (the private registry; TLS, user {offline.username} with a password): {offline.url}")

        step("online side: building the example's images (no Docker) into the online mirror")
        mirrors = example.push_all(online)
        for ref, obj in example.EXAMPLE_IMAGES.items():
            print(f"    {ref.split('@')[0]:<52} {obj.digest[:19]}…  {obj.media_type.rsplit('.', 2)[-2]}")
        layout = ROOT / "build" / "shop-frontend"  # where example.yaml's `from: oci:…` points
        shutil.rmtree(layout, ignore_errors=True)
        images.write_oci_layout(layout, {"2.1.0": example.FRONTEND})
        print(f"    {example.FRONTEND_REF:<52} {example.FRONTEND.digest[:19]}…  built locally: OCI layout build/shop-frontend")

        step("online side: a signing key, then pack (split in 1 MiB parts, as for a FAT32 stick)")
        key = work / "signer"
        run(binary, "keygen", "-o", key)
        BUNDLE.parent.mkdir(exist_ok=True)
        for old in BUNDLE.parent.glob(BUNDLE.name + ".part*"):
            old.unlink()
        mirror_flags = [x for host, m in sorted(mirrors.items()) for x in ("--mirror", f"{host}={m}")]
        run(binary, "pack", "-f", MANIFEST, "--key", f"{key}.key", "-o", BUNDLE, "--split-size", "1M",
            "--cache", work / "cache", "--plain-http", *mirror_flags)

        step("transfer: the parts and signer.pub go across; on the offline side, verify and inspect")
        first = BUNDLE.parent / (BUNDLE.name + ".part000")
        run(binary, "verify", first, "--key", f"{key}.pub")
        run(binary, "inspect", first)

        step("offline side: load into the private registry, values rewritten")
        run(binary, "load", first, "--registry", f"{offline.host}/shop", "--key", f"{key}.pub",
            "--output", OFFLINE_OUT, "--ca-file", offline.ca_file, "--username", offline.username,
            "--password-stdin", input=offline.password + "\n")

        step("what changed in the k8s folder (diff -ru original rewritten)")
        d = subprocess.run(["diff", "-ru", "manifests/example/k8s", str(OFFLINE_OUT.relative_to(ROOT) / "k8s")],
                           cwd=ROOT, capture_output=True, text=True)
        print("\n".join("    " + line for line in d.stdout.rstrip().splitlines()))

        step(f"the generated {OFFLINE_OUT.relative_to(ROOT)}/install.sh")
        print("\n".join("    " + line for line in (OFFLINE_OUT / "install.sh").read_text().rstrip().splitlines()))

        step("checking every image at the private registry with skopeo against the online mirror")
        sk = Skopeo(work)
        failures = 0
        lock = json.loads((OFFLINE_OUT / "images.lock.json").read_text())
        upstream = {**example.EXAMPLE_IMAGES, example.FRONTEND_REF: example.FRONTEND}
        for img in lock["images"]:
            obj = upstream[img["source"]]
            # example.yaml asks for linux/amd64: an index reached by tag is narrowed to that
            # image; one pinned by digest is kept whole.
            if hasattr(obj, "child_for") and "@" not in img["source"]:
                obj = obj.child_for("linux", "amd64")
            name, _, digest = img["target"].partition("@")
            if digest:  # skopeo takes a tag or a digest, not both
                name = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
            got = sk.digest("docker://" + name + ("@" + digest if digest else ""), offline)
            ok = got == obj.digest == img["digest"]
            failures += not ok
            print(f"    {'ok  ' if ok else 'FAIL'} {img['target']:<75} {got[:19]}…")
        if failures:
            print(f"\ndemo FAILED: {failures} digests differ")
            return 1
        print(f"\ndemo passed: {len(lock['images'])} images packed, verified and loaded with identical digests;"
              f" the bundle is in {BUNDLE.parent.relative_to(ROOT)}/, the offline folder in"
              f" {OFFLINE_OUT.relative_to(ROOT)}/")
        return 0
    finally:
        for r in started:
            r.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
