"""load reads the bundle once and pushes straight from it (the speed issue):

* no copy of the images on disk: the scratch space load uses (its work folder and
  TMPDIR) stays at the size of the k8s folder whatever the images weigh, for a plain
  .tar (blobs read at their offsets) and a .tar.zst (blobs streamed as they are decoded);
* a re-load into a registry that holds every image reads bundle.json, the signature and
  the k8s folder only (format v2 puts k8s/ first), also from a .tar.zst;
* bundles of the first format (v1: layout before k8s/) still verify and load;
* what a load pushes is byte for byte what the source registry served.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from harness import bundles, images
from harness.hostile import Key, run_measured
from harness.registry import clean_env

MiB = 1 << 20


def tags_digest(reg, repo: str, tag: str) -> str:
    r = images.RegistryClient(reg).request(
        "HEAD", f"/v2/{repo}/manifests/{tag}",
        headers={"Accept": ", ".join(images.ALL_MANIFEST_TYPES)})
    assert r.status == 200, (repo, tag, r.status)
    return r.headers.get("Docker-Content-Digest") or r.headers.get("docker-content-digest")


@pytest.fixture
def heavy(plain_registry, workdir, key):
    """Two projects from the same registry: one light (2 MiB of layers), one heavy
    (24 MiB more), each packed to .tar and .tar.zst."""
    made = {}
    for name, own in (("light", 1 * MiB), ("heavy", 12 * MiB)):
        refs = []
        for i in range(2):
            img = (images.oci_image if i else images.docker_image)(
                [images.make_layer(f"st-base-{name}", 512 * 1024), images.make_layer(f"st-{name}-{i}", own)])
            images.push(plain_registry, f"stream/{name}{i}", "1", img)
            refs.append((plain_registry.ref(f"stream/{name}{i}", "1"), img))
        made[name] = (bundles.project(workdir / name, [r for r, _ in refs], name=name), refs)
    return made


def pack(run_aas, manifest, out, key):
    p = run_aas("pack", "-q", "-f", manifest, "-o", out, "--key", f"{key}.key", "--plain-http", "--cache",
                out.parent / "cache", timeout=300)
    assert p.returncode == 0, p.stderr
    return out


def load_measured(aas_bundle, workdir, bundle, reg, out, key, tmp):
    tmp.mkdir(exist_ok=True)
    env = clean_env({"HOME": str(workdir / "home"), "TMPDIR": str(tmp)})
    cmd = [str(aas_bundle), "load", "-q", str(bundle), "--registry", f"{reg.host}/airgap", "--plain-http",
           "--key", f"{key}.pub", "--out", str(out)]
    work = Path(f"{out}.aas-load")
    r = run_measured(cmd, env, workdir, timeout=300, watch=(work, tmp))
    assert r["rc"] == 0, r["stderr"]
    return r


@pytest.mark.parametrize("suffix", [".tar", ".tar.zst"])
def test_scratch_space_does_not_grow_with_the_images(heavy, aas_bundle, registry_factory, workdir, run_aas, key,
                                                     suffix):
    seen = {}
    for name in ("light", "heavy"):
        manifest, refs = heavy[name]
        bundle = pack(run_aas, manifest, workdir / f"{name}{suffix}", key)
        reg = registry_factory("plain")
        r = load_measured(aas_bundle, workdir, bundle, reg, workdir / f"out-{name}", key, workdir / f"tmp-{name}")
        seen[name] = (bundle.stat().st_size, r["peak_du"], r["write_bytes"])
        # What was pushed is what the source served.
        for ref, img in refs:
            repo = "airgap/" + ref.split("/", 1)[1].rsplit(":", 1)[0]
            assert tags_digest(reg, repo, "1") == img.digest
        lock = json.loads((workdir / f"out-{name}" / "images.lock.json").read_text())
        assert sorted(i["digest"] for i in lock["images"]) == sorted(img.digest for _, img in refs)
    light, heavy_ = seen["light"], seen["heavy"]
    assert heavy_[0] > light[0] + 20 * MiB, seen  # the heavy bundle is heavier by its layers
    # Scratch: the k8s folder (a few KB), the journal, the output; never a blob.
    assert heavy_[1] < 1 * MiB and light[1] < 1 * MiB, seen
    # Bytes load itself wrote to disk (its /proc/PID/io write_bytes): far below one layer
    # (12 MiB), and no more for the heavy bundle than for the light one, give or take.
    assert 0 <= heavy_[2] < 4 * MiB, seen
    assert heavy_[2] < light[2] + 2 * MiB, seen


@pytest.mark.parametrize("suffix", [".tar", ".tar.zst"])
def test_reload_reads_only_the_k8s_folder(heavy, aas_bundle, registry_factory, workdir, run_aas, key, suffix):
    manifest, refs = heavy["heavy"]
    bundle = pack(run_aas, manifest, workdir / f"b{suffix}", key)
    reg = registry_factory("plain")
    first = load_measured(aas_bundle, workdir, bundle, reg, workdir / "out", key, workdir / "tmp")
    again = load_measured(aas_bundle, workdir, bundle, reg, workdir / "out", key, workdir / "tmp")
    size = bundle.stat().st_size
    assert first["rchar"] > size * 0.9, (first["rchar"], size)  # the first load reads every blob
    # The second reads bundle.json, the signature and k8s/ (plus the binary's own files,
    # the key, the lock and journal): well under a tenth of the bundle.
    assert 0 <= again["rchar"] < size / 10, (again["rchar"], size)
    lock = json.loads((workdir / "out" / "images.lock.json").read_text())
    assert sorted(i["digest"] for i in lock["images"]) == sorted(img.digest for _, img in refs)
    assert (workdir / "out" / "install.sh").is_file()


def test_reload_of_a_damaged_blob_region_still_needs_nothing(heavy, registry_factory, workdir, run_aas, key):
    """Re-load trusts the registry for what it holds by digest: a bundle cut inside its
    first blob (after the k8s folder) still loads into a registry that has every image,
    and is refused by verify and by a load into an empty registry."""
    manifest, refs = heavy["light"]
    bundle = pack(run_aas, manifest, workdir / "b.tar", key)
    reg = registry_factory("plain")
    p = run_aas("load", bundle, "--registry", f"{reg.host}/airgap", "--plain-http", "--key", f"{key}.pub",
                "--out", workdir / "out")
    assert p.returncode == 0, p.stderr
    # Cut the bundle inside its first blob.
    cut = workdir / "cut.tar"
    with tarfile.open(bundle) as tar:
        end = next(m for m in tar.getmembers() if m.name.startswith("images/blobs/sha256/")).offset_data + 1000
    cut.write_bytes(bundle.read_bytes()[:end])
    v = run_aas("verify", cut, "--key", f"{key}.pub")
    assert v.returncode == 1
    p = run_aas("load", cut, "--registry", f"{reg.host}/airgap", "--plain-http", "--key", f"{key}.pub", "--out",
                workdir / "out")
    assert p.returncode == 0, p.stderr
    # Into an empty registry the same cut bundle is refused, nothing tagged.
    empty = registry_factory("plain")
    p = run_aas("load", cut, "--registry", f"{empty.host}/airgap", "--plain-http", "--key", f"{key}.pub", "--out",
                workdir / "out2")
    assert p.returncode == 1 and "nothing was loaded" in p.stderr, p.stderr
    assert not (workdir / "out2").exists()


def as_v1(bundle: Path, key: Key, out: Path) -> Path:
    """The same bundle in the first format's order (layout before k8s/), re-signed."""
    with tarfile.open(bundle) as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()]
    doc = json.loads(members[0][1])
    doc["format"] = "aas-bundle/v1"
    k8s = [f for f in doc["files"] if f["path"] == "k8s" or f["path"].startswith("k8s/")]
    doc["files"] = [f for f in doc["files"] if f not in k8s] + k8s
    body = (json.dumps(doc, indent=2) + "\n").encode()
    rest = [x for x in members[2:]]
    rest = [x for x in rest if not x[0].name.startswith("k8s")] + [x for x in rest if x[0].name.startswith("k8s")]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (("bundle.json", body), ("bundle.json.sig", key.sign(body))):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(data), 0o644
            tar.addfile(ti, io.BytesIO(data))
        for m, data in rest:
            tar.addfile(m, io.BytesIO(data) if data is not None else None)
    out.write_bytes(buf.getvalue())
    return out


def test_first_format_bundles_still_load(heavy, registry_factory, workdir, run_aas, key):
    manifest, refs = heavy["light"]
    v2 = pack(run_aas, manifest, workdir / "b.tar", key)
    v1 = as_v1(v2, Key(key), workdir / "v1.tar")
    names = [m.name for m in bundles.members(v1)]
    assert names.index("images") < names.index("k8s")
    v = run_aas("verify", v1, "--key", f"{key}.pub")
    assert v.returncode == 0, v.stdout + v.stderr
    reg = registry_factory("plain")
    for attempt in ("first", "again"):
        p = run_aas("load", v1, "--registry", f"{reg.host}/airgap", "--plain-http", "--key", f"{key}.pub", "--out",
                    workdir / "out")
        assert p.returncode == 0, (attempt, p.stderr)
    for ref, img in refs:
        repo = "airgap/" + ref.split("/", 1)[1].rsplit(":", 1)[0]
        assert tags_digest(reg, repo, "1") == img.digest
