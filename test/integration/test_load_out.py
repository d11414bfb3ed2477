"""`load --out` never destroys what load did not write, and every check of --out and
--registry happens before the bundle is read (issue 11, rule 4).

"Before the bundle is read" is shown without timing anything: the bundle given is a
FIFO with no writer, so a load that opens it first blocks (until the test's bounded
timeout), while a load that checks its arguments first exits at once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from harness import hostile
from harness.faultproxy import Rule
from harness.images import RegistryClient


@pytest.fixture(scope="module")
def packed(aas_bundle, tmp_path_factory):
    root = tmp_path_factory.mktemp("outpack")
    run = hostile.Runner(aas_bundle, root / "home")
    key = hostile.keygen(run, root / "trusted")
    return run, key, hostile.pack_small(run, root / "pack", key)


@pytest.fixture
def place(tmp_path_factory) -> Path:
    """A fresh folder with a neutral name (messages quote paths)."""
    return Path(tempfile.mkdtemp(prefix="o", dir=tmp_path_factory.getbasetemp()))


def fifo(folder: Path) -> Path:
    f = folder / "bundle.tar"
    os.mkfifo(f)
    return f


def load(run, bundle, reg_host, out, key, *extra, cwd, timeout=120):
    return run("load", bundle, "--registry", reg_host, "--out", out, "--plain-http", "--key", key.pub, *extra,
               cwd=cwd, timeout=timeout)


def load_quick(run, bundle, reg_host, out, key, cwd):
    """A load that must fail before reading ``bundle`` (a FIFO): a bounded wait."""
    try:
        return load(run, bundle, reg_host, out, key, cwd=cwd, timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("load blocked reading the bundle (a FIFO) instead of refusing its arguments first")


def repos(reg) -> list[str]:
    r = RegistryClient(reg).request("GET", "/v2/_catalog")
    assert r.status == 200, r.body
    return json.loads(r.body).get("repositories") or []


def project_folder(root: Path) -> Path:
    """A folder that happens to hold an images.lock.json: a project with .git/ and notes."""
    d = root / "project"
    (d / ".git" / "refs").mkdir(parents=True)
    (d / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (d / "notes.md").write_text("my notes, not backed up anywhere\n")
    (d / "images.lock.json").write_text('{"bundle": {}, "images": []}\n')
    (d / "k8s").mkdir()
    (d / "k8s" / "values.yaml").write_text("replicas: 3\n")
    return d


def test_folder_with_a_lock_file_but_no_marker_is_refused(packed, plain_registry, place):
    run, key, bundle = packed
    d = project_folder(place)
    before = hostile.tree_digest(d)
    p = load(run, bundle, f"{plain_registry.host}/airgap", d, key, cwd=place)
    assert p.returncode in (1, 2), f"load replaced a folder it did not write:\n{p.stdout}\n{p.stderr}"
    assert str(d) in p.stderr, p.stderr
    assert hostile.tree_digest(d) == before
    assert repos(plain_registry) == []
    # ... and before the bundle is read.
    p = load_quick(run, fifo(place), f"{plain_registry.host}/airgap", d, key, place)
    assert p.returncode in (1, 2) and str(d) in p.stderr, p.stderr
    assert hostile.tree_digest(d) == before


def test_trailing_slash_works_and_reruns_work(packed, plain_registry, place):
    run, key, bundle = packed
    for attempt in range(2):
        p = load(run, bundle, f"{plain_registry.host}/airgap", "new/", key, cwd=place)
        assert p.returncode == 0, f"attempt {attempt + 1}: exit {p.returncode}\n{p.stderr}"
        assert (place / "new" / "install.sh").is_file()
        assert (place / "new" / "images.lock.json").is_file()
        left = sorted(q.name for q in place.iterdir())
        assert left == ["new"], f"attempt {attempt + 1} left {left}"
    # A rerun into an earlier output with the trailing slash, and without it.
    p = load(run, bundle, f"{plain_registry.host}/airgap", place / "new", key, cwd=place)
    assert p.returncode == 0, p.stderr
    assert sorted(q.name for q in place.iterdir()) == ["new"]


@pytest.mark.parametrize("kind", ["empty-file", "symlink-to-folder"])
def test_out_that_is_a_file_or_a_symlink_is_refused(packed, plain_registry, place, kind):
    run, key, bundle = packed
    out = place / "out"
    target = place / "elsewhere"
    target.mkdir()
    (target / "keep.txt").write_text("keep\n")
    if kind == "empty-file":
        out.write_bytes(b"")
        words = ("not a folder", "not a directory", "regular file", "is a file")
    else:
        out.symlink_to(target)
        words = ("symlink", "symbolic link")
    before = hostile.tree_digest(place)
    for bundle_ in (bundle, fifo(place)):
        p = load_quick(run, bundle_, f"{plain_registry.host}/airgap", out, key, place)
        assert p.returncode in (1, 2), f"--out {kind} was accepted:\n{p.stdout}\n{p.stderr}"
        assert str(out) in p.stderr and any(w in p.stderr.lower() for w in words), p.stderr
        assert hostile.tree_digest(place, skip={"bundle.tar"}) == {k: v for k, v in before.items()}
    assert repos(plain_registry) == []


def test_second_concurrent_load_is_refused_naming_the_first(packed, plain_registry, registry_factory, fault_proxy,
                                                           place):
    """The first load pushes through a proxy that holds every upload for a while; the
    second, into the same --out (and straight to another registry, so that without a
    lock it would finish quickly), must be refused with the first one's PID."""
    run, key, bundle = packed
    proxy = fault_proxy(plain_registry, [Rule(path_regex="/blobs/uploads/", action="delay", seconds=10, times=None)])
    out = place / "out"
    first = subprocess.Popen([str(run.binary), "load", str(bundle), "--registry", f"{proxy.host}/airgap", "--out",
                              str(out), "--plain-http", "--key", str(key.pub), "-j", "1"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=run.env(),
                             cwd=str(place))
    try:
        deadline = time.monotonic() + 60
        while not proxy.requests(path_regex="/blobs/uploads/"):
            assert first.poll() is None, f"the first load ended early ({first.returncode}): {first.stderr.read()}"
            assert time.monotonic() < deadline, "the first load never started pushing"
            time.sleep(0.05)
        other = registry_factory("plain")
        p = load(run, bundle, f"{other.host}/airgap", out, key, cwd=place, timeout=60)
        assert p.returncode in (1, 2), f"a second load into the same --out ran:\n{p.stdout}\n{p.stderr}"
        assert str(first.pid) in p.stderr, f"the message does not name process {first.pid}:\n{p.stderr}"
        assert repos(other) == []
        assert first.poll() is None, "the second load disturbed the first"
    finally:
        first.send_signal(signal.SIGTERM)
        try:
            first.wait(timeout=30)
        except subprocess.TimeoutExpired:
            first.kill()
            first.wait()


@pytest.mark.parametrize("registry", ["/UPPER", "http://127.0.0.1:5000", "user:pw@127.0.0.1:5000",
                                      "127.0.0.1:5000/UPPER", "127.0.0.1:5000//x"])
def test_invalid_registry_fails_before_the_bundle_is_read(packed, place, registry):
    run, key, _ = packed
    p = load_quick(run, fifo(place), registry, place / "out", key, place)
    assert p.returncode == 2, f"exit {p.returncode}\n{p.stderr}"
    assert "--registry" in p.stderr, p.stderr
    if "pw@" in registry:  # the password is not printed
        assert "user:pw" not in p.stderr, p.stderr
    else:
        assert registry in p.stderr, p.stderr
    assert not (place / "out").exists() and not Path(f"{place / 'out'}.aas-load").exists()
