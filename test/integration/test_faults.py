"""The air-gap round trip under the faults of real transfers: a full pack and a full
load through the fault-injecting proxy, dead registries, kill -9 at seeded random
moments, a full disk, and (opt-in, AAS_SOAK_GIB) a soak of a larger bundle with the memory watched.
Outcomes are compared with clean runs byte for byte (bundles) or manifest by manifest
(registries)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.checks import assert_ok
from harness import bundles, images
from harness.faultproxy import Rule

EPOCH = {"SOURCE_DATE_EPOCH": "1700000000"}




def source_images(reg, size=300_000):
    """Three images sharing a base, one of them an index; returns {ref: obj}."""
    base = images.make_layer("ft-base", size)
    objs = {"lib/a:1": images.oci_image([base, images.make_layer("ft-a", size // 2)]),
            "lib/b:2": images.docker_image([base, images.make_layer("ft-b", size // 3)]),
            "lib/c:3": images.multiarch("oci", seed="ft-c", layer_size=size // 4, shared_base=base)}
    for name, obj in objs.items():
        repo, tag = name.split(":")
        images.push(reg, repo, tag, obj)
    return objs


def registry_state(reg, repos) -> dict:
    """Every tag of every repository with the manifest bytes it serves."""
    client = images.RegistryClient(reg)
    state = {}
    for repo in repos:
        for tag in sorted(client.list_tags(repo)):
            state[f"{repo}:{tag}"] = client.get_manifest(repo, tag).body
    return state


def pack_cmd(manifest, out, key, cache, *extra):
    return ["pack", "-f", manifest, "-o", out, "--key", f"{key}.key", "--plain-http", "--cache", cache,
            "--retries", "6", "--stall-timeout", "3", *extra]


def load_cmd(bundle, host, out, key, *extra, retries=6, chunk=65536):
    return ["load", bundle, "--registry", f"{host}/airgap", "--out", out, "--plain-http", "--key", f"{key}.pub",
            "--retries", str(retries), "--stall-timeout", "3", "--chunk-size", str(chunk), *extra]


def test_pack_and_load_under_faults_match_clean_runs(registry_factory, fault_proxy, run_aas, workdir, key):
    src = registry_factory("plain")
    objs = source_images(src)
    src_proxy = fault_proxy(src, [
        Rule(path_regex="/blobs/sha256", action="reset_mid_body", times=2),
        Rule(path_regex="/manifests/", action="status", status=503, times=2),
        Rule(path_regex="/blobs/sha256", action="status_429", retry_after=1, times=1, after=2),
        Rule(path_regex="/blobs/sha256", action="stall", seconds=6, fraction=0.3, times=1, after=4),
    ])
    refs = [f"{src_proxy.host}/{n}" for n in objs]
    manifest = bundles.project(workdir / "proj", refs)

    faulty = workdir / "faulty" / "b.tar.zst"
    assert_ok(run_aas(*pack_cmd(manifest, faulty, key, workdir / "faulty-cache"), env=EPOCH, timeout=240))
    assert sum(r.applied for r in src_proxy.rules) >= 5, [(r.action, r.applied) for r in src_proxy.rules]
    src_proxy.set_rules([])
    clean = workdir / "clean" / "b.tar.zst"
    assert_ok(run_aas(*pack_cmd(manifest, clean, key, workdir / "clean-cache"), env=EPOCH))
    assert faulty.read_bytes() == clean.read_bytes(), "a pack through faults must give the clean bundle"

    # Load through faults on the target side, and cleanly into another registry.
    tgt = registry_factory("plain")
    tgt_proxy = fault_proxy(tgt, [
        Rule(method="PATCH", action="reset_request_body", times=2),
        Rule(method="PUT", path_regex="/blobs/uploads/", action="status", status=500, times=1),
        Rule(method="PUT", path_regex="/manifests/", action="status_429", retry_after=1, times=1),
        Rule(method="HEAD", action="status", status=502, times=1),
    ])
    assert_ok(run_aas(*load_cmd(faulty, tgt_proxy.host, workdir / "out-faulty", key), timeout=240))
    assert sum(r.applied for r in tgt_proxy.rules) >= 4, [(r.action, r.applied) for r in tgt_proxy.rules]
    ref_reg = registry_factory("plain")
    assert_ok(run_aas(*load_cmd(clean, ref_reg.host, workdir / "out-clean", key)))
    repos = [f"airgap/{n.split(':')[0]}" for n in objs]
    assert registry_state(tgt, repos) == registry_state(ref_reg, repos)
    assert len(registry_state(tgt, repos)) == len(objs)


def test_dead_registries_fail_in_bounded_time_then_resume(registry_factory, fault_proxy, run_aas, workdir, key):
    src = registry_factory("plain")
    objs = source_images(src, 50_000)
    proxy = fault_proxy(src)
    manifest = bundles.project(workdir / "proj", [f"{proxy.host}/{n}" for n in objs])
    out = workdir / "o" / "b.tar"
    proxy.dead = True
    t0 = time.monotonic()
    p = run_aas("pack", "-f", manifest, "-o", out, "--key", f"{key}.key", "--plain-http", "--cache",
                workdir / "cache", "--retries", "2", timeout=120)
    assert p.returncode == 1 and time.monotonic() - t0 < 60
    assert "gave up after 3 attempts" in p.stderr and "nothing was written" in p.stderr
    assert not out.exists()
    proxy.dead = False
    assert_ok(run_aas(*pack_cmd(manifest, out, key, workdir / "cache")))

    tgt = registry_factory("plain")
    tproxy = fault_proxy(tgt)
    tproxy.dead = True
    t0 = time.monotonic()
    p = run_aas(*load_cmd(out, tproxy.host, workdir / "loaded", key, retries=2), timeout=120)
    assert p.returncode == 1 and time.monotonic() - t0 < 60
    assert "preflight" in p.stderr and "cannot be reached" in p.stderr
    assert not (workdir / "loaded").exists()
    tproxy.dead = False
    assert_ok(run_aas(*load_cmd(out, tproxy.host, workdir / "loaded", key)))


def test_kill9_at_random_moments_pack_and_load(registry_factory, fault_proxy, aas_bundle, run_aas, workdir, key):
    src = registry_factory("plain")
    objs = source_images(src, 1_500_000)
    proxy = fault_proxy(src, [Rule(path_regex="/blobs/", action="delay", seconds=0.3, times=None)])
    manifest = bundles.project(workdir / "proj", [f"{proxy.host}/{n}" for n in objs])
    out = workdir / "o" / "b.tar.zst"
    cache = workdir / "o-cache"
    env = {**os.environ, **EPOCH}

    def no_bundle_at_the_name():
        # Either nothing, or (had the run finished before the kill) a whole, signed bundle.
        if out.exists():
            assert_ok(run_aas("verify", out, "--key", f"{key}.pub"))
            out.unlink()

    clean = workdir / "clean.tar.zst"
    assert_ok(run_aas(*pack_cmd(manifest, clean, key, workdir / "clean-cache"), env=EPOCH))
    clean_digest = bundles.sha256_file(clean)
    cmd = [str(aas_bundle), *map(str, pack_cmd(manifest, out, key, cache, "--zstd-level", "12"))]
    rng = random.Random(7)  # seeded: the same moments on every run
    for _ in range(6):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        time.sleep(rng.uniform(0.05, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        no_bundle_at_the_name()
    assert_ok(run_aas(*pack_cmd(manifest, out, key, cache), env=EPOCH))
    assert bundles.sha256_file(out) == clean_digest
    assert sorted(f.name for f in out.parent.iterdir()) == ["b.tar.zst"]

    # Load, killed at random moments too; the registry ends equal to a clean load's.
    tgt = registry_factory("plain")
    tproxy = fault_proxy(tgt, [Rule(path_regex="/blobs/uploads/", action="delay", seconds=0.2, times=None)])
    loaded = workdir / "loaded"
    lcmd = [str(aas_bundle), *map(str, load_cmd(out, tproxy.host, loaded, key, "-j", "2"))]
    rng = random.Random(11)
    for _ in range(6):
        proc = subprocess.Popen(lcmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 2.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # The output folder appears only complete.
        if loaded.exists():
            assert (loaded / "images.lock.json").exists() and (loaded / "install.sh").exists()
    tproxy.set_rules([])
    assert_ok(run_aas(*load_cmd(out, tproxy.host, loaded, key)))
    ref_reg = registry_factory("plain")
    assert_ok(run_aas(*load_cmd(clean, ref_reg.host, workdir / "loaded-clean", key)))
    repos = [f"airgap/{n.split(':')[0]}" for n in objs]
    assert registry_state(tgt, repos) == registry_state(ref_reg, repos)


def test_kill9_during_a_plain_tar_pack_keeps_the_layers_it_wrote(registry_factory, fault_proxy, aas_bundle,
                                                                     run_aas, workdir, key):
    """A plain .tar's layers are written only into the bundle's temporary file: a pack
    killed there leaves them for the next pack into the same OUT, which takes the file
    over and keeps every layer that still hashes right where it is."""
    src = registry_factory("plain")
    objs = source_images(src, 1_500_000)
    proxy = fault_proxy(src)
    manifest = bundles.project(workdir / "proj", [f"{proxy.host}/{n}" for n in objs])
    clean = workdir / "clean.tar"
    assert_ok(run_aas(*pack_cmd(manifest, clean, key, workdir / "clean-cache"), env=EPOCH))
    layers = {b["digest"]: b["size"] for b in bundles.bundle_json(clean)["blobs"] if b["kind"] == "layer"}
    held = max(layers, key=lambda d: layers[d])  # never finishes in the first runs
    stall = Rule(path_regex=f"/blobs/{held}", action="stall", seconds=60, fraction=0.5, times=None)
    proxy.set_rules([stall])
    out = workdir / "o" / "b.tar"
    cache = workdir / "o-cache"
    notes = cache / "refs" / "sha256"
    others = [d for d in layers if d != held]
    note = lambda d: json.loads((notes / d.split(":")[1]).read_text())  # noqa: E731
    temps = lambda: [f for f in out.parent.glob(".b.tar.tmp-*")]  # noqa: E731
    cmd = [str(aas_bundle), *map(str, pack_cmd(manifest, out, key, cache))]
    cmd[cmd.index("--stall-timeout") + 1] = "120"

    def killed_once_the_others_are_in():
        """Starts pack and kills it once every layer but `held` is noted as lying in its
        temporary file (60 s at most); returns that file."""
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**os.environ, **EPOCH})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            t = temps()
            if len(t) == 1 and all((notes / d.split(":")[1]).exists() and note(d)["bundle"] == str(t[0])
                                   for d in others):
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        t = temps()
        assert len(t) == 1 and not out.exists()
        assert all(note(d)["bundle"] == str(t[0]) for d in others)
        return t[0]

    def blob_gets():
        return [e["target"] for e in proxy.log if e["method"] == "GET" and "/blobs/" in e["target"]]

    killed_once_the_others_are_in()
    proxy.set_rules([])
    before = len(blob_gets())
    p = run_aas(*pack_cmd(manifest, out, key, cache, "--json"), env=EPOCH)
    assert_ok(p)
    assert json.loads(p.stdout)["bytes_downloaded"] == layers[held], (p.stdout, p.stderr, layers)
    got = blob_gets()[before:]
    assert len(got) == 1 and got[0].endswith(f"/blobs/{held}"), got
    assert bundles.sha256_file(out) == bundles.sha256_file(clean)  # byte for byte a clean run's bundle
    assert sorted(f.name for f in out.parent.iterdir()) == ["b.tar"]

    # A layer found damaged in the taken-over file is downloaded again, not kept.
    out.unlink()
    proxy.set_rules([stall])
    temp = killed_once_the_others_are_in()
    victim = others[0]
    with open(temp, "r+b") as f:
        f.seek(note(victim)["offset"] + 10)
        b = f.read(1)
        f.seek(note(victim)["offset"] + 10)
        f.write(bytes([b[0] ^ 0xFF]))
    proxy.set_rules([])
    before = len(blob_gets())
    p = run_aas(*pack_cmd(manifest, out, key, cache, "--json"), env=EPOCH)
    assert_ok(p)
    assert json.loads(p.stdout)["bytes_downloaded"] == layers[held] + layers[victim]
    assert sorted(g.rsplit("/", 1)[1] for g in blob_gets()[before:]) == sorted([held, victim])
    assert bundles.sha256_file(out) == bundles.sha256_file(clean)
    assert sorted(f.name for f in out.parent.iterdir()) == ["b.tar"]


def _tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_disk_full_leaves_nothing_half_written(registry_factory, run_aas, workdir, key):
    small = workdir / "small"
    if not _tmpfs(small, "1m"):
        pytest.skip("needs root and a tmpfs mount to fill a disk")
    try:
        src = registry_factory("plain")
        objs = source_images(src, 600_000)
        manifest = bundles.project(workdir / "proj", [src.ref(*n.split(":")) for n in objs])
        out = small / "b.tar"
        p = run_aas("pack", "-f", manifest, "-o", out, "--key", f"{key}.key", "--plain-http", "--cache",
                    workdir / "cache")
        assert p.returncode == 1 and "No space left on device" in p.stderr
        assert list(small.iterdir()) == []
        # Load: the bundle fits elsewhere; the images need no space beside the output
        # (they go from the bundle to the registry), the k8s folder does and does not fit.
        (workdir / "proj" / "k8s" / "data.bin").write_bytes(os.urandom(1_500_000))
        bundle = workdir / "b.tar"
        assert_ok(run_aas("pack", "-f", manifest, "-o", bundle, "--key", f"{key}.key", "--plain-http", "--cache",
                          workdir / "cache"))
        tgt = registry_factory("plain")
        p = run_aas(*load_cmd(bundle, tgt.host, small / "out", key))
        assert p.returncode == 1 and "No space left on device" in p.stderr
        assert not (small / "out").exists()
        assert not (small / "out.aas-load" / "bundle").exists()
    finally:
        subprocess.run(["umount", str(small)], capture_output=True)


# The soak is opt-in: AAS_SOAK_GIB is its size in GiB; unset, empty or 0 skips it (visibly).
SOAK_GIB_TEXT = os.environ.get("AAS_SOAK_GIB", "").strip()


def soak_gib() -> float:
    """AAS_SOAK_GIB as a positive number of GiB; fails the test on anything else."""
    try:
        gib = float(SOAK_GIB_TEXT)
    except ValueError:
        gib = -1.0
    if not gib > 0:
        pytest.fail(f"AAS_SOAK_GIB={SOAK_GIB_TEXT!r}: expected a size in GiB, e.g. AAS_SOAK_GIB=3")
    return gib


@pytest.mark.skipif(SOAK_GIB_TEXT.lstrip("0.") == "",
                    reason="the soak is opt-in: set AAS_SOAK_GIB to its size in GiB (e.g. AAS_SOAK_GIB=3)")
def test_soak_memory_stays_flat(registry_factory, fault_proxy, aas_bundle, run_aas, workdir, key):
    """pack, verify and load of AAS_SOAK_GIB GiB (opt-in; the README's figures are for 3)
    through faulty proxies; the peak RSS of each stays within buffers, whatever the size."""
    gib = soak_gib()
    need = int(gib * 7 * (1 << 30))  # two registries, cache, bundle, extraction, slack
    if shutil.disk_usage(workdir).free < need:
        pytest.skip(f"the soak needs {need >> 30} GiB free in {workdir}")
    src = registry_factory("plain")
    layer_size = 256 << 20
    layers = []
    for _ in range(max(1, int(gib * (1 << 30)) // layer_size)):
        blob = os.urandom(layer_size)  # content does not matter here, only its size
        layers.append(images.Layer(blob, images.sha256_digest(blob)))
    img = images.oci_image(layers)
    images.push(src, "soak/big", "1", img)
    del layers
    proxy = fault_proxy(src, [Rule(path_regex="/blobs/sha256", action="reset_mid_body", times=2, fraction=0.6)])
    manifest = bundles.project(workdir / "proj", [f"{proxy.host}/soak/big:1"])
    bundle = workdir / "soak.tar.zst"
    tgt = registry_factory("plain")
    tproxy = fault_proxy(tgt, [Rule(method="PATCH", action="reset_request_body", times=2, fraction=0.5)])
    runs = {
        "pack": pack_cmd(manifest, bundle, key, workdir / "cache"),
        "verify": ["verify", bundle, "--key", f"{key}.pub"],
        "load": load_cmd(bundle, tproxy.host, workdir / "out", key, chunk=64 << 20),
    }
    rss = {}
    harness_dir = Path(__file__).resolve().parent
    for name, args in runs.items():
        p = subprocess.run([sys.executable, "-m", "harness.peakrss", str(aas_bundle), *map(str, args)],
                           cwd=harness_dir, capture_output=True, text=True, timeout=900)
        assert p.returncode == 0, p.stderr[-2000:]
        rss[name] = int(p.stderr.strip().rsplit("peak_rss_kib=", 1)[1]) // 1024
    print(f"peak RSS MiB for {gib} GiB: {rss}")
    assert all(v < 96 for v in rss.values()), rss
    assert images.fetch_manifest(tgt, "airgap/soak/big", "1") == img.manifest
