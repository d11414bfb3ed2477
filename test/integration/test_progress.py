"""Progress of `pack` and `load` as docker pull and Zarf show it: on a terminal (a
pseudo-terminal here) one line per image in flight redrawn in place, one final line per
finished image and the total bar; per-blob lines only with --verbose; without a terminal,
one plain line per image when it finishes.

Transfers are slowed down with the fault proxy (each blob request waits) and run one blob
at a time (-j 1), so that the live region is drawn while images are moving.
"""

from __future__ import annotations

import re

import pytest

from harness import bundles, images
from harness.checks import assert_ok, run_on_terminal
from harness.faultproxy import Rule
from harness.registry import clean_env

CURSOR_UP = re.compile(r"\x1b\[(\d+)A")
ERASE_DOWN = "\x1b[J"


def three_images(registry, seed):
    """Pushes three two-blob images (config and one layer); returns their references."""
    refs = []
    for i in range(3):
        img = images.oci_image([images.make_layer(f"{seed}-{i}", 200_000)])
        images.push(registry, f"prog/app{i}", "1", img)
        refs.append(f"prog/app{i}:1")
    return refs


def frames(text: str) -> list[str]:
    """What was drawn between two erasures of the live region."""
    return text.split(ERASE_DOWN)


def check_redrawn_in_place(text: str, refs: list[str], active: str):
    # The live region is redrawn in place: back to its first line, erased, drawn again.
    assert "\r\x1b[K" in text
    assert ERASE_DOWN in text
    assert CURSOR_UP.search(text), "the live region never went up more than its bar line"
    # An image in flight has its own line, with its bytes; others wait.
    assert any(f"  {r}  {active} " in text for r in refs), text
    assert "  waiting" in text
    # In every frame, one line per image at most.
    for f in frames(text):
        for r in refs:
            assert f.count(f"  {r}  ") <= 1, f
    # The bar with ETA and the count of finished images.
    assert "ETA" in text and "%)" in text and "images done" in text


def pack_on_terminal(aas_bundle, proxy, workdir, key, refs, *before):
    manifest = bundles.project(workdir / "proj", [f"{proxy.host}/{r}" for r in refs])
    return run_on_terminal([str(aas_bundle), *before, "pack", "-f", str(manifest), "-o", str(workdir / "b.tar"),
                            "--key", f"{key}.key", "--plain-http", "--cache", str(workdir / "cache"), "-j", "1"],
                           clean_env({"HOME": str(workdir)}))


def test_pack_on_a_terminal_one_line_per_image(plain_registry, fault_proxy, aas_bundle, workdir, key):
    refs = three_images(plain_registry, "pg-tty")
    proxy = fault_proxy(plain_registry, [Rule(path_regex="/blobs/", action="delay", seconds=0.4, times=None)])
    rc, text = pack_on_terminal(aas_bundle, proxy, workdir, key, refs)
    assert rc == 0, text
    full = [f"{proxy.host}/{r}" for r in refs]
    check_redrawn_in_place(text, full, "downloading")
    # Each finished image collapses to exactly one final line, in the order they finished.
    for r in full:
        assert len(re.findall(re.escape(r) + r": downloaded \S+ \S+ in [0-9.]+ s \(", text)) == 1, text
    # No per-blob lines without --verbose.
    assert "blob sha256:" not in text and "): downloaded" not in text

    # Again: everything is in the cache now, each image says so once.
    rc, text = pack_on_terminal(aas_bundle, proxy, workdir, key, refs)
    assert rc == 0, text
    for r in full:
        assert text.count(f"{r}: in the cache (") == 1, text


def test_pack_verbose_adds_the_blob_lines(plain_registry, fault_proxy, aas_bundle, workdir, key):
    refs = three_images(plain_registry, "pg-verbose")
    proxy = fault_proxy(plain_registry, [])
    rc, text = pack_on_terminal(aas_bundle, proxy, workdir, key, refs, "--verbose")
    assert rc == 0, text
    blob_lines = re.findall(r"blob sha256:[0-9a-f]+ \((config|layer), [^)]+\): downloaded", text)
    assert len(blob_lines) == 6, text  # a config and a layer per image


def test_pack_without_a_terminal_prints_one_line_per_image(plain_registry, run_aas, workdir, key):
    refs = three_images(plain_registry, "pg-plain")
    full = [plain_registry.ref(*r.split(":")) for r in refs]
    manifest = bundles.project(workdir / "proj", full)
    p = run_aas("pack", "-f", manifest, "-o", workdir / "b.tar", "--key", f"{key}.key", "--plain-http",
                "--cache", workdir / "cache")
    assert_ok(p)
    assert "\r" not in p.stderr and "\x1b[" not in p.stderr
    for r in full:
        done = [line for line in p.stderr.splitlines() if line.startswith(f"{r}: downloaded ")]
        assert len(done) == 1, p.stderr
    assert "blob sha256:" not in p.stderr
    assert "  waiting" not in p.stderr and "downloading" not in p.stderr


@pytest.fixture
def packed3(plain_registry, run_aas, workdir, key):
    refs = three_images(plain_registry, "pg-load")
    full = [plain_registry.ref(*r.split(":")) for r in refs]
    manifest = bundles.project(workdir / "proj", full)
    out = workdir / "bundles" / "b.tar"
    assert_ok(run_aas("pack", "-f", manifest, "-o", out, "--key", f"{key}.key", "--plain-http",
                      "--cache", workdir / "cache", "--json"))
    return out, full


def test_load_on_a_terminal_one_line_per_image(packed3, registry_factory, fault_proxy, aas_bundle, workdir, key):
    bundle, full = packed3
    target = registry_factory("plain")
    proxy = fault_proxy(target, [Rule(path_regex="/blobs/uploads/", action="delay", seconds=0.3, times=None)])
    rc, text = run_on_terminal([str(aas_bundle), "load", str(bundle), "--registry", f"{proxy.host}/airgap",
                                "--out", str(workdir / "out"), "--plain-http", "--key", f"{key}.pub", "-j", "1"],
                               clean_env({"HOME": str(workdir)}))
    assert rc == 0, text
    check_redrawn_in_place(text, full, "pushing")
    for r in full:
        target_ref = f"{proxy.host}/airgap/{r.split('/', 1)[1]}"
        assert len(re.findall(re.escape(f"{r} -> {target_ref}: pushed "), text)) == 1, text
    assert "blob sha256:" not in text


def test_load_without_a_terminal_prints_one_line_per_image(packed3, registry_factory, run_aas, workdir, key):
    bundle, full = packed3
    target = registry_factory("plain")
    args = ["load", bundle, "--registry", f"{target.host}/airgap", "--plain-http", "--key", f"{key}.pub"]
    p = run_aas(*args, "--out", workdir / "out")
    assert_ok(p)
    assert "\r" not in p.stderr and "\x1b[" not in p.stderr
    for r in full:
        lines = [line for line in p.stderr.splitlines() if line.startswith(f"{r} -> ")]
        assert len(lines) == 1 and ": pushed " in lines[0], p.stderr
    assert "blob sha256:" not in p.stderr
    # A second load into a fresh folder: every blob is already there, each image says so.
    p = run_aas("--verbose", *args, "--out", workdir / "out2")
    assert_ok(p)
    for r in full:
        lines = [line for line in p.stderr.splitlines() if line.startswith(f"{r} -> ")]
        assert len(lines) == 1 and lines[0].endswith(")") and ": already there (" in lines[0], p.stderr
    # Nothing to push: one HEAD per image, and no blob looked at (a re-load reads the
    # k8s folder only).
    assert "holds every image of the bundle already: reading only the k8s folder" in p.stderr, p.stderr
    assert re.search(r"HEAD http://[^ ]+/v2/airgap/prog/app0/manifests/1 -> 200", p.stderr), p.stderr
    assert "/blobs/" not in p.stderr, p.stderr
