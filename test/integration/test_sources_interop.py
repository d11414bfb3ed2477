"""Image sources written by real producers (skopeo, podman, buildah, from Debian; no
daemon, vfs storage): an OCI layout whose names hold '/' and ':', an OCI archive and a
docker archive picked by reference, each packed and checked against the digests the
producer reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import bundles, images
from harness.checks import assert_ok

NAME = "localhost/interop/data:2.0"


@pytest.fixture
def produced(skopeo, workdir):
    """skopeo's own copies of one OCI image: oci:DIR:NAME (beside a second image),
    oci-archive:FILE:NAME, docker-archive:FILE:NAME."""
    img = images.oci_image([images.make_layer("interop-a", 5_000)])
    other = images.oci_image([images.make_layer("interop-b", 3_000)])
    src = images.write_oci_layout(workdir / "src", {"1.0": img, "9.9": other})
    out = workdir / "made"
    out.mkdir()
    skopeo.run("copy", f"oci:{src}:1.0", f"oci:{out / 'layout'}:{NAME}")
    skopeo.run("copy", f"oci:{src}:9.9", f"oci:{out / 'layout'}:localhost/interop/other:1")
    skopeo.run("copy", f"oci:{src}:1.0", f"oci-archive:{out / 'image.oci.tar'}:{NAME}")
    skopeo.run("copy", f"oci:{src}:1.0", f"docker-archive:{out / 'image.docker.tar'}:{NAME}")
    return img, out


def pack_from(run_aas, workdir, key, name, source):
    manifest = bundles.project(workdir / name, ["shop/data:2.0"],
                               extra_images=[{"ref": "shop/data:2.0", "from": source}])
    bundle = workdir / f"{name}.tar"
    p = run_aas("pack", "-f", manifest, "-o", bundle, "--key", f"{key}.key", "--cache", workdir / "cache")
    return p, bundle


@pytest.mark.parametrize("kind", ["oci", "oci-archive"])
def test_oci_names_holding_slashes_and_colons(run_aas, workdir, key, produced, skopeo, kind):
    img, out = produced
    path = out / ("layout" if kind == "oci" else "image.oci.tar")
    source = f"{kind}:{path}:{NAME}"
    p, bundle = pack_from(run_aas, workdir, key, kind, source)
    assert_ok(p)
    doc = bundles.bundle_json(bundle)
    assert [i["digest"] for i in doc["images"]] == [skopeo.digest(source)]
    assert doc["images"][0]["digest"] == img.digest  # skopeo kept the bytes, and so did pack
    assert_ok(run_aas("verify", bundle, "--key", f"{key}.pub"))


def test_oci_layout_with_several_images_lists_the_names_to_give(run_aas, workdir, key, produced):
    _, out = produced
    p, _ = pack_from(run_aas, workdir, key, "several", f"oci:{out / 'layout'}")
    assert p.returncode == 1, p.stderr
    assert f"name one with oci:PATH:NAME, NAME being one of: {NAME}, localhost/interop/other:1" in p.stderr, p.stderr


def test_docker_archive_picked_by_reference(run_aas, workdir, key, produced, skopeo):
    _, out = produced
    archive = out / "image.docker.tar"
    p, bundle = pack_from(run_aas, workdir, key, "darchive", f"docker-archive:{archive}:{NAME}")
    assert_ok(p)
    doc = bundles.bundle_json(bundle)
    assert len(doc["images"]) == 1
    # A reference the archive does not hold is named as missing.
    p, _ = pack_from(run_aas, workdir, key, "dmissing", f"docker-archive:{archive}:localhost/not/there:1")
    assert p.returncode == 1 and "localhost/not/there:1" in p.stderr, p.stderr


def test_oci_archive_of_a_docker_save_tar_says_which_kind_it_is(run_aas, workdir, key, produced):
    _, out = produced
    p, _ = pack_from(run_aas, workdir, key, "wrongkind", f"oci-archive:{out / 'image.docker.tar'}")
    assert p.returncode == 1
    assert "use docker-archive:" in p.stderr, p.stderr


# ---- podman and buildah (Debian's, no daemon: vfs storage in the test's folder) -----------------

def _tool(name):
    import shutil
    if not shutil.which(name):
        pytest.skip(f"{name} is not installed (scripts/setup.sh installs it)")
    return name


@pytest.fixture
def runroot():
    """A short folder for podman's and buildah's run state (podman wants at most 50
    characters), removed afterwards."""
    import shutil
    import tempfile
    d = tempfile.mkdtemp(prefix="pr", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _storage(workdir, tool, run):
    return [tool, "--root", str(workdir / f"{tool}-root"), "--runroot", run, "--storage-driver", "vfs"]


def _run(cmd, **kw):
    import subprocess
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=180, **kw)
    assert p.returncode == 0, f"{cmd[0]} failed:\n{p.stdout}\n{p.stderr}"
    return p


@pytest.fixture
def podman_made(workdir, runroot):
    """An image made by `podman import`, saved by podman in its three formats."""
    _tool("podman")
    pm = _storage(workdir, "podman", runroot) + ["--cgroup-manager", "cgroupfs", "--events-backend", "none"]
    ctx = workdir / "ctx"
    ctx.mkdir()
    (ctx / "hello.txt").write_text("made by podman\n")
    import tarfile
    with tarfile.open(workdir / "rootfs.tar", "w") as t:
        t.add(ctx / "hello.txt", arcname="hello.txt")
    name = "localhost/interop/made:1.0"
    _run(pm + ["import", workdir / "rootfs.tar", name])
    out = workdir / "podman"
    out.mkdir()
    _run(pm + ["save", "--format", "oci-archive", "-o", out / "img.oci.tar", name])
    _run(pm + ["save", "--format", "oci-dir", "-o", out / "img.ocidir", name])
    _run(pm + ["save", "--format", "docker-archive", "-o", out / "img.docker.tar", name])
    digest = json.loads((out / "img.ocidir" / "index.json").read_text())["manifests"][0]["digest"]
    return name, out, digest


@pytest.mark.parametrize("kind,file", [("oci-archive", "img.oci.tar"), ("oci", "img.ocidir"),
                                       ("docker-archive", "img.docker.tar")])
def test_podman_save_formats(run_aas, workdir, key, podman_made, kind, file):
    name, out, digest = podman_made
    p, bundle = pack_from(run_aas, workdir, key, f"pm-{kind}", f"{kind}:{out / file}:{name}")
    assert_ok(p)
    doc = bundles.bundle_json(bundle)
    if kind != "docker-archive":  # podman's OCI manifest kept byte for byte
        assert doc["images"][0]["digest"] == digest
    assert_ok(run_aas("verify", bundle, "--key", f"{key}.pub"))


def test_buildah_push_oci_archive(run_aas, workdir, key, runroot):
    _tool("buildah")
    bh = _storage(workdir, "buildah", runroot)
    (workdir / "hello.txt").write_text("made by buildah\n")
    c = _run(bh + ["from", "scratch"]).stdout.strip()
    _run(bh + ["copy", c, workdir / "hello.txt", "/hello.txt"])
    name = "localhost/interop/built:1.0"
    _run(bh + ["commit", "-q", c, name])
    archive = workdir / "built.oci.tar"
    _run(bh + ["push", name, f"oci-archive:{archive}:{name}"])
    p, bundle = pack_from(run_aas, workdir, key, "bh", f"oci-archive:{archive}:{name}")
    assert_ok(p)
    assert len(bundles.bundle_json(bundle)["images"]) == 1
