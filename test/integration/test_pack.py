"""`aas-bundle pack` against real registries (docker-registry 2.8 on 127.0.0.1),
`docker save`-style archives and OCI layouts.

Bundles are read back with Python's tarfile, the zstd CLI, openssl and skopeo, never
with aas-bundle itself; every digest is compared with what was pushed to the source.
"""

from __future__ import annotations

import json
import tarfile
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from harness.checks import assert_ok
from harness import bundles, images
from harness.faultproxy import Rule




def pack(run_aas, manifest, out, key, *extra, timeout=180, input=None):
    args = ["pack", "-f", manifest, "-o", out, "--cache", Path(out).parent / "cache", "--json"]
    args += ["--key", f"{key}.key"] if key else ["--unsigned"]
    return run_aas(*args, *extra, timeout=timeout, input=input)


def blob_digests(doc) -> set[str]:
    return {b["digest"] for b in doc["blobs"]}


def check_blobs(root: Path, doc):
    """Every blob listed is in the layout with its digest and size; nothing else is."""
    listed = blob_digests(doc)
    present = {f"sha256:{p.name}" for p in (root / "images/blobs/sha256").iterdir()}
    assert present == listed
    for b in doc["blobs"]:
        p = root / "images/blobs/sha256" / b["digest"].split(":")[1]
        assert bundles.sha256_file(p) == b["digest"]
        assert p.stat().st_size == b["size"]


# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("compressed", [True, False])
def test_pack_oci_and_docker_images(plain_registry, run_aas, workdir, key, skopeo, compressed):
    oci = images.oci_image([images.make_layer("p-base", 100_000), images.make_layer("p-oci", 5_000)])
    dock = images.docker_image([images.make_layer("p-base", 100_000), images.make_layer("p-dock", 7_000)])
    images.push(plain_registry, "lib/oci-app", "1.0", oci)
    images.push(plain_registry, "lib/docker-app", "2.0", dock)
    refs = [plain_registry.ref("lib/oci-app", "1.0"), plain_registry.ref("lib/docker-app", "2.0")]
    manifest = bundles.project(workdir / "proj", refs)
    out = workdir / "out" / ("b.tar.zst" if compressed else "b.tar")
    p = pack(run_aas, manifest, out, key, "--plain-http")
    assert_ok(p)
    summary = json.loads(p.stdout)
    assert out.is_file() and summary["sha256"] == bundles.sha256_file(out)
    assert (out.read_bytes()[:4] == bundles.ZSTD_MAGIC) == compressed

    # Entry order is the documented one (format v2: k8s/ right after the signature).
    names = [m.name for m in bundles.members(out)]
    assert names[:6] == ["bundle.json", "bundle.json.sig", "k8s", "k8s/README.txt", "k8s/plain",
                         "k8s/plain/app.yaml"]
    assert names[6:11] == ["images", "images/oci-layout", "images/index.json", "images/blobs", "images/blobs/sha256"]
    assert all(n.startswith("images/blobs/sha256/") for n in names[11:])
    assert names[11:] == sorted(names[11:])

    root = bundles.extract(out, workdir / "unpacked")
    doc = json.loads((root / "bundle.json").read_bytes())
    assert doc["format"] == "aas-bundle/v2" and doc["name"] == "demo"
    by_ref = {i["ref"]: i for i in doc["images"]}
    assert by_ref[refs[0]]["digest"] == oci.digest and by_ref[refs[0]]["media_type"] == images.OCI_MANIFEST
    assert by_ref[refs[1]]["digest"] == dock.digest and by_ref[refs[1]]["media_type"] == images.DOCKER_MANIFEST
    assert by_ref[refs[0]]["platforms"] == ["linux/amd64"]
    assert by_ref[refs[0]]["sites"][0]["file"] == "k8s/plain/app.yaml"
    # Manifests byte for byte; the shared base layer once.
    assert (root / "images/blobs/sha256" / oci.digest.split(":")[1]).read_bytes() == oci.manifest
    assert (root / "images/blobs/sha256" / dock.digest.split(":")[1]).read_bytes() == dock.manifest
    check_blobs(root, doc)
    assert len(doc["blobs"]) == 2 + 2 + 3  # 2 manifests, 2 configs, 3 distinct layers
    assert summary["bytes_saved_by_dedup"] == images.make_layer("p-base", 100_000).size
    # Every file listed with its hash; the k8s folder as it was.
    for f in doc["files"]:
        if f["type"] == "file":
            assert bundles.sha256_file(root / f["path"]) == f["sha256"], f["path"]
    assert (root / "k8s/plain/app.yaml").read_bytes() == (workdir / "proj/k8s/plain/app.yaml").read_bytes()
    # Signature: stock openssl.
    v = subprocess.run(["openssl", "pkeyutl", "-verify", "-rawin", "-pubin", "-inkey", f"{key}.pub",
                        "-in", root / "bundle.json", "-sigfile", root / "bundle.json.sig"],
                       capture_output=True, text=True)
    assert v.returncode == 0, v.stderr
    # skopeo reads the OCI-typed image from the layout, same digest as the registry.
    assert skopeo.digest(f"oci:{root / 'images'}:{refs[0]}") == oci.digest
    assert skopeo.inspect(f"oci:{root / 'images'}:{refs[0]}")["Layers"] == [l.digest for l in oci.layers]


def test_multiarch_with_and_without_platform(plain_registry, run_aas, workdir, key, skopeo):
    idx = images.multiarch("oci", seed="pk-multi")
    images.push(plain_registry, "lib/multi", "3.0", idx)
    ref = plain_registry.ref("lib/multi", "3.0")
    manifest = bundles.project(workdir / "proj", [ref])

    # Whole index without a platform.
    out = workdir / "all" / "b.tar"
    assert_ok(pack(run_aas, manifest, out, key, "--plain-http"))
    root = bundles.extract(out, workdir / "all-x")
    doc = json.loads((root / "bundle.json").read_text())
    img = doc["images"][0]
    assert img["digest"] == idx.digest and img["media_type"] == images.OCI_INDEX
    assert sorted(img["platforms"]) == sorted(f"{c.platform[0]}/{c.platform[1]}" + (f"/{c.platform[2]}" if c.platform[2] else "")
                                              for c in idx.children)
    assert blob_digests(doc) == {idx.digest, *idx.manifests().keys(), *idx.blobs.keys()}
    check_blobs(root, doc)
    assert skopeo.digest(f"oci:{root / 'images'}:{ref}") == idx.digest

    # One platform: that image's manifest, bytes as served; the index digest recorded.
    out = workdir / "arm" / "b.tar"
    assert_ok(pack(run_aas, manifest, out, key, "--plain-http", "--platform", "linux/arm64"))
    root = bundles.extract(out, workdir / "arm-x")
    doc = json.loads((root / "bundle.json").read_text())
    arm = idx.child_for("linux", "arm64")
    img = doc["images"][0]
    assert img["digest"] == arm.digest and img["index_digest"] == idx.digest
    assert img["platforms"] == ["linux/arm64/v8"]
    assert blob_digests(doc) == {arm.digest, *arm.blobs.keys()}
    check_blobs(root, doc)


def three_platform_list(seed):
    """A Docker manifest list with linux/amd64, linux/arm64/v8 and linux/s390x children."""
    return images.docker_manifest_list([
        images.docker_image([images.make_layer(f"{seed}-amd64", 4096)], ("linux", "amd64", None)),
        images.docker_image([images.make_layer(f"{seed}-arm64", 4096)], ("linux", "arm64", "v8")),
        images.docker_image([images.make_layer(f"{seed}-s390x", 4096)], ("linux", "s390x", None)),
    ])


def test_several_platforms_give_a_filtered_index(plain_registry, run_aas, workdir, key):
    idx = three_platform_list("pk-filter")
    images.push(plain_registry, "lib/multi", "4.0", idx)
    manifest = bundles.project(workdir / "proj", [plain_registry.ref("lib/multi", "4.0")],
                               platforms=["linux/amd64", "linux/arm64"])
    out = workdir / "o" / "b.tar"
    assert_ok(pack(run_aas, manifest, out, key, "--plain-http"))
    root = bundles.extract(out, workdir / "x")
    doc = json.loads((root / "bundle.json").read_text())
    img = doc["images"][0]
    assert img["filtered_index"] is True and img["index_digest"] == idx.digest
    assert img["digest"] != idx.digest
    kept = json.loads((root / "images/blobs/sha256" / img["digest"].split(":")[1]).read_bytes())
    want = {idx.child_for("linux", "amd64").digest, idx.child_for("linux", "arm64").digest}
    assert {m["digest"] for m in kept["manifests"]} == want
    assert kept["mediaType"] == images.DOCKER_LIST
    assert sorted(img["platforms"]) == ["linux/amd64", "linux/arm64/v8"]
    check_blobs(root, doc)

    # inspect --json carries every image field bundle.json has, filtered_index included.
    p = run_aas("inspect", str(out), "--json")
    assert_ok(p)
    assert json.loads(p.stdout)["images"] == doc["images"]


@pytest.mark.parametrize("kind", ["oci", "docker"])
def test_every_platform_of_an_index_keeps_it_as_served(plain_registry, run_aas, workdir, key, skopeo, kind):
    """Asking for every platform an index has drops nothing: the index is stored byte for
    byte, under its own digest, as without --platform."""
    idx = images.multiarch(kind, seed=f"pk-every-{kind}")
    images.push(plain_registry, "lib/every", kind, idx)
    ref = plain_registry.ref("lib/every", kind)
    manifest = bundles.project(workdir / "proj", [ref])
    out = workdir / "o" / "b.tar"
    assert_ok(pack(run_aas, manifest, out, key, "--plain-http", "--platform", "linux/amd64",
                   "--platform", "linux/arm64"))
    root = bundles.extract(out, workdir / "x")
    doc = json.loads((root / "bundle.json").read_text())
    img = doc["images"][0]
    assert img["digest"] == idx.digest and img["media_type"] == idx.media_type
    assert "filtered_index" not in img and "index_digest" not in img
    assert sorted(img["platforms"]) == ["linux/amd64", "linux/arm64/v8"]
    stored = (root / "images/blobs/sha256" / idx.digest.split(":")[1]).read_bytes()
    assert stored == idx.manifest
    assert blob_digests(doc) == {idx.digest, *idx.manifests().keys(), *idx.blobs.keys()}
    check_blobs(root, doc)
    if kind == "oci":  # skopeo's oci: transport finds no Docker manifest list by name
        assert skopeo.digest(f"oci:{root / 'images'}:{ref}") == idx.digest

    p = run_aas("inspect", str(out), "--json")
    assert_ok(p)
    assert json.loads(p.stdout)["images"] == doc["images"]


def test_digest_pinned_index_is_kept_whole(plain_registry, run_aas, workdir, key):
    idx = images.multiarch("oci", seed="pk-pinned")
    images.push(plain_registry, "lib/pinned", "1.0", idx)
    ref = plain_registry.ref("lib/pinned", "1.0") + "@" + idx.digest
    manifest = bundles.project(workdir / "proj", [ref], platforms=["linux/amd64"])
    out = workdir / "o" / "b.tar"
    assert_ok(pack(run_aas, manifest, out, key, "--plain-http"))
    doc = bundles.bundle_json(out)
    img = doc["images"][0]
    assert img["digest"] == idx.digest and "index_digest" not in img
    assert blob_digests(doc) == {idx.digest, *idx.manifests().keys(), *idx.blobs.keys()}


def test_mirror_keeps_the_logical_reference(plain_registry, run_aas, workdir, key):
    img = images.oci_image([images.make_layer("pk-mirror", 3_000)])
    images.push(plain_registry, "mirror/bitnami/mongodb", "6.0.3", img)
    manifest = bundles.project(workdir / "proj", ["bitnami/mongodb:6.0.3"])
    out = workdir / "o" / "b.tar"
    p = pack(run_aas, manifest, out, key, "--plain-http", "--mirror", f"docker.io={plain_registry.host}/mirror")
    assert_ok(p)
    doc = bundles.bundle_json(out)
    assert doc["images"][0]["ref"] == "docker.io/bitnami/mongodb:6.0.3"
    assert doc["images"][0]["source"] == f"{plain_registry.host}/mirror/bitnami/mongodb:6.0.3"
    assert doc["images"][0]["digest"] == img.digest


@pytest.mark.parametrize("layout", ["classic", "oci"])
def test_docker_archive_source(run_aas, workdir, key, layout):
    img = images.docker_image([images.make_layer("pk-arch1", 20_000), images.make_layer("pk-arch2", 9_000)])
    written = images.write_docker_archive(workdir / "build" / "app.tar", img, ["shop/app:2.1.0"], layout=layout)
    tar = written["path"]
    manifest = bundles.project(workdir / "proj", ["shop/app:2.1.0"],
                               extra_images=[{"ref": "shop/app:2.1.0", "from": f"docker-archive:{tar}"}])
    digests = []
    for run in ("a", "b"):
        out = workdir / run / "b.tar.zst"
        assert_ok(pack(run_aas, manifest, out, key))
        root = bundles.extract(out, workdir / f"x-{run}")
        doc = json.loads((root / "bundle.json").read_text())
        rec = doc["images"][0]
        assert rec["ref"] == "docker.io/shop/app:2.1.0"
        assert rec["source"].startswith("docker-archive:")
        check_blobs(root, doc)
        digests.append(rec["digest"])
    assert digests[0] == digests[1], "the same archive must give the same manifest digest"
    if layout == "oci":
        assert digests[0] == written["manifest_digest"]  # Docker 25 archives carry their own manifest


def test_oci_layout_source(run_aas, workdir, key, skopeo):
    img = images.oci_image([images.make_layer("pk-layout", 12_000)])
    layout = images.write_oci_layout(workdir / "build" / "front", {"2.1.0": img})
    manifest = bundles.project(workdir / "proj", ["shop/front:2.1.0"],
                               extra_images=[{"ref": "shop/front:2.1.0", "from": f"oci:{layout}:2.1.0"}])
    out = workdir / "o" / "b.tar"
    assert_ok(pack(run_aas, manifest, out, key))
    root = bundles.extract(out, workdir / "x")
    doc = json.loads((root / "bundle.json").read_text())
    assert doc["images"][0]["digest"] == img.digest
    assert skopeo.digest(f"oci:{root / 'images'}:docker.io/shop/front:2.1.0") == img.digest


def test_every_failure_is_listed_and_nothing_is_written(plain_registry, tls_registry, run_aas, workdir, key):
    good = images.oci_image([images.make_layer("pk-good", 2_000)])
    images.push(plain_registry, "lib/good", "1", good)
    refs = [plain_registry.ref("lib/good", "1"), plain_registry.ref("lib/missing", "1"),
            "127.0.0.1:9/lib/dead:1", tls_registry.ref("lib/private", "1")]
    manifest = bundles.project(workdir / "proj", refs)
    out = workdir / "o" / "b.tar.zst"
    p = pack(run_aas, manifest, out, key, "--plain-http", "--retries", "0")
    assert p.returncode == 1, p.stderr
    err = p.stderr
    assert "3 images could not be packed; nothing was written" in err
    assert "lib/missing:1" in err and "MANIFEST_UNKNOWN" in err
    assert "127.0.0.1:9/lib/dead:1" in err
    assert tls_registry.ref("lib/private", "1") in err
    assert "k8s/plain/app.yaml:" in err  # where each came from
    failures = json.loads(p.stdout)["failures"]
    assert len(failures) == 3
    assert not out.exists()
    assert [f.name for f in out.parent.iterdir() if f.name != "cache"] == []
    # The good image's blobs were kept: a re-run without the bad ones downloads nothing of it.
    manifest = bundles.project(workdir / "proj", refs[:1])
    p = pack(run_aas, manifest, out, key, "--plain-http")
    assert_ok(p)
    assert json.loads(p.stdout)["bytes_downloaded"] == 0


def test_invalid_reference_from_discovery_fails_pack(run_aas, workdir, key):
    manifest = bundles.project(workdir / "proj", ["example.com/x/queue@sha256:v1.8.3"])
    out = workdir / "o" / "b.tar"
    p = pack(run_aas, manifest, out, key)
    assert p.returncode == 1
    assert "k8s/plain/app.yaml:" in p.stderr and "did you mean ':v1.8.3'" in p.stderr
    assert not out.exists()


def test_key_is_required_unless_unsigned(plain_registry, run_aas, workdir):
    img = images.oci_image([images.make_layer("pk-uns", 1_000)])
    images.push(plain_registry, "lib/u", "1", img)
    manifest = bundles.project(workdir / "proj", [plain_registry.ref("lib/u", "1")])
    out = workdir / "o" / "b.tar"
    p = run_aas("pack", "-f", manifest, "-o", out, "--plain-http", "--cache", workdir / "c")
    assert p.returncode == 2 and "--unsigned" in p.stderr and not out.exists()
    assert_ok(pack(run_aas, manifest, out, None, "--plain-http"))
    names = [m.name for m in bundles.members(out)]
    assert "bundle.json.sig" not in names and bundles.bundle_json(out)["signer"] == ""


def test_split_into_parts(plain_registry, run_aas, workdir, key):
    img = images.oci_image([images.make_layer("pk-split", 3_500_000)])
    images.push(plain_registry, "lib/big", "1", img)
    manifest = bundles.project(workdir / "proj", [plain_registry.ref("lib/big", "1")])
    whole = workdir / "w" / "b.tar.zst"
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    p = run_aas("pack", "-f", manifest, "-o", whole, "--key", f"{key}.key", "--plain-http", "--cache",
                workdir / "cache", env=env)
    assert_ok(p)
    out = workdir / "s" / "b.tar.zst"
    p = run_aas("pack", "-f", manifest, "-o", out, "--key", f"{key}.key", "--plain-http", "--cache",
                workdir / "cache", "--split-size", "1M", "--json", env=env)
    assert_ok(p)
    index = json.loads((out.parent / "b.tar.zst.parts").read_text())
    names = sorted(f.name for f in out.parent.iterdir())
    assert names == sorted(["b.tar.zst.parts"] + [f"b.tar.zst.part{i:03d}" for i in range(len(index["parts"]))])
    assert len(index["parts"]) >= 3
    for part in index["parts"][:-1]:
        assert part["size"] == 1 << 20
    for part in index["parts"]:
        assert bundles.sha256_file(out.parent / part["name"]) == part["sha256"]
    # Same creation time and content: the parts put together are the whole bundle.
    joined = bundles.whole_bytes(out.parent / "b.tar.zst.parts")
    assert joined == whole.read_bytes()
    assert index["sha256"] == bundles.sha256_file(whole) == json.loads(p.stdout)["sha256"]
    assert not out.exists()  # only the parts and their index


def test_rerun_uses_the_cache(plain_registry, fault_proxy, run_aas, workdir, key):
    img = images.oci_image([images.make_layer("pk-cache1", 300_000), images.make_layer("pk-cache2", 200_000)])
    images.push(plain_registry, "lib/c", "1", img)
    proxy = fault_proxy(plain_registry)
    ref = f"{proxy.host}/lib/c:1"
    manifest = bundles.project(workdir / "proj", [ref])
    out = workdir / "o" / "b.tar"
    p = pack(run_aas, manifest, out, key, "--plain-http")
    assert_ok(p)
    assert json.loads(p.stdout)["bytes_downloaded"] == sum(l.size for l in img.layers) + len(img.config)
    blob_gets = lambda: [e for e in proxy.log if e["method"] == "GET" and "/blobs/" in e["path"]]
    before = len(blob_gets())
    # A plain .tar's layers were written once, into the bundle: the cache notes where, and
    # a re-pack (into another bundle, or over this one) reads them from there.
    cache = out.parent / "cache"
    assert not list((cache / "blobs" / "sha256").glob(img.layers[0].digest.split(":")[1]))
    other = workdir / "o" / "again.tar"
    p = pack(run_aas, manifest, other, key, "--plain-http")  # the same cache (beside the outputs)
    assert_ok(p)
    assert json.loads(p.stdout)["bytes_downloaded"] == 0
    assert len(blob_gets()) == before
    assert bundles.bundle_json(other)["blobs"] == bundles.bundle_json(out)["blobs"]
    p = pack(run_aas, manifest, out, key, "--plain-http")
    assert_ok(p)
    assert json.loads(p.stdout)["bytes_downloaded"] == 0
    # Both bundles gone: the layers are downloaded again (the config stayed in the cache).
    out.unlink()
    other.unlink()
    p = pack(run_aas, manifest, out, key, "--plain-http")
    assert_ok(p)
    assert json.loads(p.stdout)["bytes_downloaded"] == sum(l.size for l in img.layers)
    zc = workdir / "zcache"
    with_zc = lambda dest: run_aas("pack", "-f", manifest, "-o", dest, "--cache", zc, "--json", "--key",  # noqa: E731
                                   f"{key}.key", "--plain-http")
    # A .tar.zst's downloads go through the cache: a re-pack needs nothing, whatever
    # became of the bundle.
    z = workdir / "o" / "b.tar.zst"
    assert_ok(with_zc(z))
    z.unlink()
    out.unlink()
    p = with_zc(z)
    assert_ok(p)
    assert json.loads(p.stdout)["bytes_downloaded"] == 0
    # A bundle changed behind the cache's back (overwritten, or damaged): the blob whose
    # bytes no longer match is dropped from the cache and downloaded into its place.
    zc = workdir / "tcache"
    assert_ok(with_zc(out))
    good = out.read_bytes()
    raw = bytearray(good)
    with tarfile.open(out) as tar:
        m = tar.getmember(f"images/blobs/sha256/{img.layers[0].digest.split(':')[1]}")
    raw[m.offset_data + 5] ^= 0xFF
    out.write_bytes(bytes(raw))
    third = workdir / "o" / "third.tar"
    p = with_zc(third)
    assert_ok(p)
    assert [w for w in json.loads(p.stdout)["warnings"] if "no longer matches" in w] == [
        f"blob {img.layers[0].digest} (layer of {ref}): the cache's copy no longer matches; it was dropped from the "
        f"cache {zc} and downloaded again"], p.stdout
    assert json.loads(p.stdout)["bytes_downloaded"] == img.layers[0].size
    assert json.loads(p.stdout)["bytes_from_cache"] == img.layers[1].size + len(img.config)
    assert_ok(run_aas("verify", third, "--key", f"{key}.pub"))
    assert bundles.bundle_json(third)["blobs"] == bundles.bundle_json(out)["blobs"]
    p = with_zc(workdir / "o" / "fourth.tar")  # the cache now points at third.tar
    assert_ok(p)
    assert json.loads(p.stdout)["bytes_downloaded"] == 0
    # A .tar.zst is written in order and cannot take a download in place: a damaged cache
    # file is refused, dropped, and the next pack downloads it.
    zc2 = workdir / "zcache2"
    z2 = workdir / "o" / "z2.tar.zst"
    with_zc2 = lambda dest: run_aas("pack", "-f", manifest, "-o", dest, "--cache", zc2, "--json", "--key",  # noqa: E731
                                    f"{key}.key", "--plain-http")
    assert_ok(with_zc2(z2))
    cached = zc2 / "blobs" / "sha256" / img.layers[0].digest.split(":")[1]
    data = bytearray(cached.read_bytes())
    data[5] ^= 0xFF
    cached.write_bytes(bytes(data))
    p = with_zc2(workdir / "o" / "z3.tar.zst")
    assert p.returncode == 1 and "is damaged; it was removed from the cache" in p.stderr, p.stderr
    assert not (workdir / "o" / "z3.tar.zst").exists()
    p = with_zc2(workdir / "o" / "z3.tar.zst")
    assert_ok(p)
    assert json.loads(p.stdout)["bytes_downloaded"] == img.layers[0].size


def test_faults_are_retried_and_give_the_same_bundle(plain_registry, fault_proxy, run_aas, workdir, key):
    img = images.oci_image([images.make_layer("pk-fault", 400_000)])
    images.push(plain_registry, "lib/f", "1", img)
    proxy = fault_proxy(plain_registry, [Rule(path_regex="/blobs/", action="reset_mid_body", times=2),
                                         Rule(path_regex="/manifests/", action="status", status=503, times=1)])
    manifest = bundles.project(workdir / "proj", [f"{proxy.host}/lib/f:1"])
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    outs = []
    for run in ("faulty", "clean"):
        out = workdir / run / "b.tar.zst"
        p = run_aas("pack", "-f", manifest, "-o", out, "--key", f"{key}.key", "--plain-http",
                    "--cache", workdir / run / "cache", env=env)
        assert_ok(p)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert any(e["fault"] for e in proxy.log)


def text_layer(seed, size: int) -> images.Layer:
    """A layer of compressible text (zstd -19 takes seconds over a few MiB of it)."""
    r = random.Random(seed)
    words = ["alpha", "beta", "kube", "image", "layer", "value", "chart", "helm", "pod", "node"]
    data = " ".join(r.choice(words) + str(r.randrange(1000)) for _ in range(size // 6)).encode()[:size]
    return images.Layer(data, images.sha256_digest(data))


def test_kill9_leaves_no_bundle_and_rerun_completes(plain_registry, fault_proxy, aas_bundle, run_aas, workdir, key):
    img = images.oci_image([text_layer(f"pk-kill{i}", 3_000_000) for i in range(4)])
    images.push(plain_registry, "lib/k", "1", img)
    # Blobs come slowly and zstd -19 writes slowly, so that the kills land in the
    # download (0.3 s, 1.2 s) and in the writing (4 s).
    proxy = fault_proxy(plain_registry, [Rule(path_regex="/blobs/", action="delay", seconds=0.7, times=None)])
    manifest = bundles.project(workdir / "proj", [f"{proxy.host}/lib/k:1"])
    out = workdir / "o" / "b.tar.zst"
    cache = workdir / "o" / "cache"
    for delay in (0.3, 1.2, 4.0):
        proc = subprocess.Popen([str(aas_bundle), "pack", "-f", str(manifest), "-o", str(out), "--key",
                                 f"{key}.key", "--plain-http", "--cache", str(cache), "--split-size", "1M",
                                 "--zstd-level", "19"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        finished = proc.poll() is not None
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
        assert not finished, f"pack finished before it was killed ({proc.returncode}): {err}"
        assert not out.exists() and not (out.parent / "b.tar.zst.parts").exists()
    # Temporary parts of the killed runs are there; the next run removes them.
    assert any(f.name.startswith(".b.tar.zst.part") for f in out.parent.iterdir())
    p = pack(run_aas, manifest, out, key, "--plain-http", timeout=300)
    assert_ok(p)
    assert sorted(f.name for f in out.parent.iterdir()) == ["b.tar.zst", "cache"]
    assert not [f for f in (cache / "blobs/sha256").iterdir() if f.name.startswith(".tmp-")]
    root = bundles.extract(out, workdir / "x")
    check_blobs(root, json.loads((root / "bundle.json").read_text()))


def test_tls_source_with_password(tls_registry, run_aas, workdir, key):
    img = images.oci_image([images.make_layer("pk-tls", 2_000)])
    images.push(tls_registry, "lib/t", "1", img)
    manifest = bundles.project(workdir / "proj", [tls_registry.ref("lib/t", "1")])
    out = workdir / "o" / "b.tar"
    p = pack(run_aas, manifest, out, key, "--ca-file", tls_registry.ca_file, "--username", tls_registry.username,
             "--password-stdin", input=tls_registry.password + "\n")
    assert_ok(p)
    assert tls_registry.password not in p.stdout + p.stderr
    assert bundles.bundle_json(out)["images"][0]["digest"] == img.digest


def test_escaping_symlink_in_k8s_is_refused(plain_registry, run_aas, workdir, key):
    img = images.oci_image([images.make_layer("pk-link", 1_000)])
    images.push(plain_registry, "lib/l", "1", img)
    manifest = bundles.project(workdir / "proj", [plain_registry.ref("lib/l", "1")])
    os.symlink("../../etc/passwd", workdir / "proj/k8s/plain/evil")
    os.symlink("app.yaml", workdir / "proj/k8s/plain/fine")
    out = workdir / "o" / "b.tar"
    p = pack(run_aas, manifest, out, key, "--plain-http")
    assert p.returncode == 2
    assert "k8s/plain/evil: symlink to ../../etc/passwd points outside the k8s folder" in p.stderr
    assert not out.exists()
    os.unlink(workdir / "proj/k8s/plain/evil")
    assert_ok(pack(run_aas, manifest, out, key, "--plain-http"))
    links = {m.name: m.linkname for m in bundles.members(out) if m.issym()}
    assert links == {"k8s/plain/fine": "app.yaml"}


def test_progress_bar_on_a_terminal(plain_registry, fault_proxy, aas_bundle, workdir, key):
    """On a TTY, pack prints a line per image and redraws a bar with bytes, rate and ETA."""
    from harness.checks import run_on_terminal
    from harness.registry import clean_env
    images.push(plain_registry, "tty/app", "1", images.oci_image([images.make_layer("pk-tty", 500_000)]))
    proxy = fault_proxy(plain_registry, [Rule(path_regex="/blobs/", action="delay", seconds=0.6, times=None)])
    manifest = bundles.project(workdir / "proj", [f"{proxy.host}/tty/app:1"])
    rc, text = run_on_terminal([str(aas_bundle), "pack", "-f", str(manifest), "-o", str(workdir / "b.tar"), "--key",
                                f"{key}.key", "--plain-http", "--cache", str(workdir / "cache")],
                               clean_env({"HOME": str(workdir)}))
    assert rc == 0, text
    assert "\r\x1b[K" in text
    assert "download:" in text and "ETA" in text and "%)" in text
    assert f"image {proxy.host}/tty/app:1: sha256:" in text


def test_possible_images_are_listed_and_packed_with_include_possible(plain_registry, run_aas, workdir, key):
    """A literal reference in container args (no values behind it) is a "possible" image:
    pack names it with file:line, and --include-possible packs it when its registry has it
    (one that is not there is only said)."""
    main = images.oci_image([images.make_layer("poss-main", 1_000)])
    side = images.oci_image([images.make_layer("poss-side", 1_000)])
    images.push(plain_registry, "shop/main", "1", main)
    images.push(plain_registry, "shop/side", "1", side)
    root = workdir / "proj"
    (root / "k8s" / "plain").mkdir(parents=True)
    (root / "k8s" / "plain" / "app.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n"
        "      containers:\n        - name: main\n"
        f"          image: {plain_registry.host}/shop/main:1\n"
        "          args:\n"
        f"            - --sidecar-image={plain_registry.host}/shop/side:1\n"
        f"            - --other-image={plain_registry.host}/shop/absent:9\n")
    manifest = root / "bundle.yaml"
    manifest.write_text("apiVersion: aas-bundle/v1\nkind: Bundle\nname: poss\nversion: 1.0.0\nk8s: k8s\n"
                        "manifests: [plain/app.yaml]\n")
    args = ["pack", "-f", manifest, "--key", f"{key}.key", "--plain-http", "--cache", workdir / "cache"]
    p = run_aas(*args, "-o", workdir / "a.tar")
    assert_ok(p)
    assert f"possible image {plain_registry.host}/shop/side:1 at k8s/plain/app.yaml:12" in p.stderr, p.stderr
    assert "--include-possible" in p.stderr
    refs = [i["ref"] for i in bundles.bundle_json(workdir / "a.tar")["images"]]
    assert refs == [f"{plain_registry.host}/shop/main:1"]

    p = run_aas(*args, "-o", workdir / "b.tar", "--include-possible")
    assert_ok(p)
    doc = bundles.bundle_json(workdir / "b.tar")
    by_ref = {i["ref"]: i for i in doc["images"]}
    assert set(by_ref) == {f"{plain_registry.host}/shop/main:1", f"{plain_registry.host}/shop/side:1"}, by_ref
    assert by_ref[f"{plain_registry.host}/shop/side:1"]["class"] == "optional"
    assert by_ref[f"{plain_registry.host}/shop/side:1"]["digest"] == side.digest
    assert f"possible image {plain_registry.host}/shop/absent:9 at k8s/plain/app.yaml:13 (container args): not packed" \
        in p.stderr, p.stderr
