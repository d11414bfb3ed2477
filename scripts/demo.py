"""Demo driver for scripts/demo.sh (see there). Uses the integration-test harness to
start real registries and build images without Docker."""

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "test" / "integration"))

from harness import images  # noqa: E402
from harness.pki import make_ca  # noqa: E402
from harness.registry import start_registry  # noqa: E402
from harness.skopeo import Skopeo, docker_ref  # noqa: E402


def step(text):
    print(f"\n==> {text}", flush=True)


def main(binary):
    work = Path(tempfile.mkdtemp(prefix="aas-bundle-demo-"))
    started = []
    try:
        step("starting registries on 127.0.0.1")
        online = start_registry(work / "online", "plain")
        started.append(online)
        offline = start_registry(work / "offline", "tls-basic", ca=make_ca(work / "ca"))
        started.append(offline)
        print(f"    online  (source, plain HTTP): {online.url}")
        print(f"    offline (private, TLS + password for user {offline.username}): {offline.url}")

        step("building example images (no Docker) and pushing them to the online registry")
        base = images.make_layer("debian-base", 2 << 20)
        examples = {
            "bitnami/mongodb:6.0.3-debian-11-r9": images.docker_image([base, images.make_layer("mongodb", 1 << 20)]),
            "ai-appstore/aas-frontend:1.2.2": images.multiarch("oci", seed="frontend", layer_size=512 << 10,
                                                               shared_base=base),
            "emissaryingress/emissary:3.4.0": images.docker_manifest_list(
                [images.docker_image([base, images.make_layer("emissary-amd64", 256 << 10)], ("linux", "amd64")),
                 images.docker_image([base, images.make_layer("emissary-arm64", 256 << 10)],
                                     ("linux", "arm64", "v8"))]),
        }
        for name, obj in examples.items():
            repo, tag = name.split(":")
            images.push(online, repo, tag, obj)
            print(f"    {online.host}/{name}  {obj.digest}  ({obj.media_type.rsplit('.', 2)[-2]})")

        step("aas-bundle copy: online -> offline, digests preserved")
        for name in examples:
            repo = name.split(":")[0]
            cmd = [binary, "copy", "--from-plain-http", "--to-ca-file", offline.ca_file,
                   "--to-username", offline.username, "--to-password-stdin",
                   f"{online.host}/{name}", f"{offline.host}/{repo}"]
            print("    $ " + " ".join(cmd[1:]), flush=True)
            subprocess.run(cmd, input=offline.password + "\n", text=True, check=True)

        step("checking every digest at the offline registry with skopeo")
        sk = Skopeo(work)
        failures = 0
        for name, obj in examples.items():
            repo, tag = name.split(":")
            got = sk.digest(docker_ref(offline, repo, tag), offline)
            ok = got == obj.digest
            failures += not ok
            print(f"    {'ok  ' if ok else 'FAIL'} {offline.host}/{name}  {got}")
            for child in getattr(obj, "children", []):
                got_c = sk.digest(docker_ref(offline, repo, digest=child.digest), offline)
                ok_c = got_c == child.digest
                failures += not ok_c
                print(f"    {'ok  ' if ok_c else 'FAIL'}   {'/'.join(p for p in child.platform if p)}  {got_c}")

        step("second copy: everything is already there")
        name = "bitnami/mongodb:6.0.3-debian-11-r9"
        subprocess.run([binary, "copy", "--from-plain-http", "--to-ca-file", offline.ca_file,
                        "--to-username", offline.username, "--to-password-stdin",
                        f"{online.host}/{name}", f"{offline.host}/bitnami/mongodb"],
                       input=offline.password + "\n", text=True, check=True)
        if failures:
            print(f"\ndemo FAILED: {failures} digests differ")
            return 1
        print("\ndemo passed: every image copied with identical digests")
        return 0
    finally:
        for r in started:
            r.stop()
        subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
