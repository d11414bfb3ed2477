"""Image sources written by a real producer (skopeo, from Debian; no daemon): an OCI
layout whose names hold '/' and ':', an OCI archive and a docker archive picked by
reference, each packed and checked against the digests skopeo reports."""

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
