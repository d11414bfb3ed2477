"""The tool crosses the gap too: `scripts/package.sh` builds a portable archive that runs
on a minimal Debian without any of the build's -dev packages (or their runtime libraries).

The target machine is a `debootstrap --variant=minbase bookworm` chroot, built once from
the Debian mirror this machine's apt uses (read from /etc/apt at run time) and cached in
~/.cache/aas-bundle-test/chroot-bookworm ($AAS_TEST_CACHE overrides the folder). Inside
it: `--version`, `verify` and `load --dry-run` of a bundle packed outside, and a real
`load` into a registry on 127.0.0.1 (a chroot shares the network). When debootstrap
cannot be had (not root, not installed, no mirror, fails, or takes over 5 minutes), the
test is skipped and says why.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from harness import bundles, images
from harness.checks import assert_ok

DEBOOTSTRAP_TIMEOUT = 300
SUITE = "bookworm"


def cache_dir() -> Path:
    return Path(os.environ.get("AAS_TEST_CACHE") or Path.home() / ".cache" / "aas-bundle-test")


def debian_mirror() -> str | None:
    """The first Debian mirror apt uses for bookworm (deb822 .sources or one-line lists)."""
    files = [Path("/etc/apt/sources.list")] + sorted(Path("/etc/apt/sources.list.d").glob("*"))
    for f in files:
        if not f.is_file() or not (f.name.endswith(".list") or f.name.endswith(".sources")):
            continue
        text = f.read_text(errors="replace")
        if f.name.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                fields = {}
                for line in stanza.splitlines():
                    if line.startswith("#") or ":" not in line:
                        continue
                    k, v = line.split(":", 1)
                    fields[k.strip().lower()] = v.split()
                if ("deb" in fields.get("types", []) and SUITE in fields.get("suites", [])
                        and fields.get("uris")):
                    return fields["uris"][0]
        else:
            for line in text.splitlines():
                parts = line.split("#", 1)[0].split()
                parts = [p for p in parts if not p.startswith("[")]
                if len(parts) >= 3 and parts[0] == "deb" and parts[2] == SUITE:
                    return parts[1]
    return None


def chroot_ready(root: Path) -> bool:
    return (root / ".aas-complete").is_file() and (root / "bin/sh").exists()


def bookworm_chroot() -> Path:
    """The cached chroot, built under a lock on first use; pytest.skip when it cannot be."""
    if os.geteuid() != 0:
        pytest.skip("building and entering a chroot needs root")
    root = cache_dir() / f"chroot-{SUITE}"
    if chroot_ready(root):
        return root
    debootstrap = shutil.which("debootstrap") or ("/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists() else None)
    if not debootstrap:
        pytest.skip("debootstrap is not installed (apt-get install debootstrap)")
    mirror = debian_mirror()
    if not mirror:
        pytest.skip(f"no Debian mirror for {SUITE} in /etc/apt/sources.list(.d)")
    cache_dir().mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / "chroot.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if chroot_ready(root):
            return root
        tmp = cache_dir() / f"chroot-{SUITE}.tmp"
        for d in (tmp, root):
            if os.path.ismount(d / "proc"):  # left by an interrupted run: never delete through it
                subprocess.run(["umount", str(d / "proc")], check=False)
            shutil.rmtree(d, ignore_errors=True)
        t0 = time.monotonic()
        try:
            p = subprocess.run([debootstrap, "--variant=minbase", SUITE, str(tmp), mirror],
                               capture_output=True, text=True, timeout=DEBOOTSTRAP_TIMEOUT)
        except subprocess.TimeoutExpired:
            shutil.rmtree(tmp, ignore_errors=True)
            pytest.skip(f"debootstrap of {SUITE} took more than {DEBOOTSTRAP_TIMEOUT} s; skipped")
        if p.returncode != 0:
            tail = "\n".join((p.stdout + p.stderr).splitlines()[-5:])
            shutil.rmtree(tmp, ignore_errors=True)
            pytest.skip(f"debootstrap of {SUITE} failed ({p.returncode}):\n{tail}")
        (tmp / ".aas-complete").write_text(f"debootstrap --variant=minbase {SUITE} in {time.monotonic() - t0:.0f} s\n")
        tmp.rename(root)
    return root


@pytest.fixture(scope="module")
def package(repo_root) -> Path:
    """scripts/package.sh's archive (built, or brought up to date, by the script)."""
    p = subprocess.run(["bash", str(repo_root / "scripts/package.sh")], capture_output=True, text=True,
                       timeout=3600, cwd=repo_root)
    assert p.returncode == 0, p.stdout + p.stderr
    out = repo_root / p.stdout.strip().splitlines()[-1]
    assert out.is_file(), p.stdout
    return out


def test_archive_layout(package, repo_root):
    name = package.name[: -len(".tar.gz")]
    assert re.fullmatch(r"aas-bundle-\d+\.\d+\.\d+-linux-[a-z0-9]+", name)
    with tarfile.open(package) as t:
        members = {m.name: m for m in t.getmembers()}
    assert all(n == name or n.startswith(name + "/") for n in members)
    exe = members[f"{name}/bin/aas-bundle"]
    assert exe.isfile() and exe.mode & 0o111 and exe.uid == 0
    libs = sorted(Path(n).name for n in members if n.startswith(f"{name}/lib/") and members[n].isfile())
    assert any(lib.startswith("libcurl") for lib in libs), libs
    assert any(lib.startswith("libssl") for lib in libs), libs
    for glibc in ("libc.so", "libm.so", "libpthread.so", "libdl.so", "librt.so", "ld-linux"):
        assert not any(lib.startswith(glibc) for lib in libs), libs
    assert f"{name}/README.txt" in members
    # The checksum beside it.
    sums = (package.parent / (package.name + ".sha256")).read_text().split()
    assert sums == [bundles.sha256_file(package).split(":", 1)[1], package.name]
    # Idempotent: a second run gives the same bytes.
    before = package.read_bytes()
    p = subprocess.run(["bash", str(repo_root / "scripts/package.sh")], capture_output=True, text=True,
                       timeout=3600, cwd=repo_root)
    assert p.returncode == 0, p.stderr
    assert package.read_bytes() == before


@contextlib.contextmanager
def proc_mounted(root: Path):
    """/proc inside the chroot, as every running Linux system has it: the loader resolves
    the binary's $ORIGIN through /proc/self/exe."""
    target = root / "proc"
    mine = not os.path.ismount(target)
    if mine:
        p = subprocess.run(["mount", "-t", "proc", "proc", str(target)], capture_output=True, text=True)
        if p.returncode != 0:
            pytest.skip(f"cannot mount /proc in the chroot: {p.stderr.strip()}")
    try:
        yield
    finally:
        if mine:
            subprocess.run(["umount", str(target)], check=False)


def in_chroot(root: Path, *args, timeout=120):
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C"}
    return subprocess.run(["chroot", str(root), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_runs_on_minimal_debian_without_dev_packages(package, plain_registry, registry_factory, run_aas,
                                                      workdir, key):
    root = bookworm_chroot()
    # The machine has none of the build's -dev packages, nor the libraries they bring.
    p = in_chroot(root, "dpkg-query", "-W", "-f", "${Package}\\n")
    assert p.returncode == 0, p.stderr
    installed = set(p.stdout.split())
    assert not {x for x in installed if x.endswith("-dev")}, installed
    assert not installed & {"libcurl4", "libarchive13", "libyaml-cpp0.7", "libfmt9"}, installed

    # Unpacked with the chroot's own tar, in a folder of this test's own.
    inside = Path("/tmp") / f"aas-package-{os.getpid()}-{workdir.name}"
    host_side = root / inside.relative_to("/")
    shutil.rmtree(host_side, ignore_errors=True)
    host_side.mkdir(parents=True)
    try:
        with proc_mounted(root):
            run_inside(root, inside, host_side, package, plain_registry, registry_factory, run_aas, workdir, key)
    finally:
        shutil.rmtree(host_side, ignore_errors=True)


def run_inside(root, inside, host_side, package, plain_registry, registry_factory, run_aas, workdir, key):
    """Unpacks the archive inside the chroot and runs it there."""
    shutil.copy(package, host_side / package.name)
    assert_ok(in_chroot(root, "tar", "-xzf", inside / package.name, "-C", inside))
    exe = inside / package.name[: -len(".tar.gz")] / "bin/aas-bundle"

    p = in_chroot(root, exe, "--version")
    assert p.returncode == 0, p.stdout + p.stderr
    assert re.fullmatch(r"aas-bundle \d+\.\d+\.\d+\n", p.stdout)

    # A bundle packed outside, by the build's binary.
    img = images.oci_image([images.make_layer("pkg-app", 50_000)])
    images.push(plain_registry, "pkg/app", "1.0", img)
    ref = plain_registry.ref("pkg/app", "1.0")
    manifest = bundles.project(workdir / "proj", [ref])
    assert_ok(run_aas("pack", "-f", manifest, "-o", workdir / "b.tar.zst", "--key", f"{key}.key",
                      "--plain-http", "--cache", workdir / "cache", "--json"))
    shutil.copy(workdir / "b.tar.zst", host_side / "b.tar.zst")
    shutil.copy(f"{key}.pub", host_side / "signer.pub")

    p = in_chroot(root, exe, "verify", inside / "b.tar.zst", "--key", inside / "signer.pub")
    assert p.returncode == 0, p.stdout + p.stderr

    target = registry_factory("plain")
    load = [exe, "load", inside / "b.tar.zst", "--key", inside / "signer.pub", "--registry",
            f"{target.host}/airgap", "--plain-http"]
    p = in_chroot(root, *load, "--out", inside / "dry", "--dry-run")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Dry run: nothing was pushed" in p.stdout
    assert f"{target.host}/airgap/pkg/app:1.0" in p.stdout

    # A real load from inside: the chroot shares this machine's 127.0.0.1.
    p = in_chroot(root, *load, "--out", inside / "out", "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout)["images"][0]["digest"] == img.digest
    assert images.fetch_manifest(target, "airgap/pkg/app", "1.0") == img.manifest
    assert (host_side / "out/images.lock.json").is_file()
