#!/usr/bin/env bash
# Delta bundles (issue 15): what an upgrade carries across the gap, and how long its load
# takes, beside a full bundle of the same version. In a local docker-registry on 127.0.0.1:
#   v1: 10 images, each one of 3 shared 64 MiB base layers and a 16 MiB layer of its own
#       (Docker and OCI media types mixed), packed and loaded into a registry R;
#   v2: one image's own layer changed, one image added (a base and a 16 MiB own layer);
#   load writes R's inventory.json (signed), and v2 is packed twice: full, and
#   `pack --have inventory.json --have-key` (the delta).
# Printed: both bundles' sizes (and the delta's share of the full one), and the median
# wall time of REPS loads of each (default 3) into a fresh registry that holds v1 (the v1
# load is not timed), plus the time to write the inventory with `aas-bundle inventory`.
# Usage: scripts/bench-delta.sh [REPS]    Environment: AAS_BUNDLE (default build/src/cli/aas-bundle)
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3}
bin=${AAS_BUNDLE:-build/src/cli/aas-bundle}
[ -x "$bin" ] || { meson setup build >/dev/null 2>&1 || true; ninja -C build src/cli/aas-bundle >/dev/null; }
bin=$(realpath "$bin")
dir=$(mktemp -d "${TMPDIR:-/tmp}/aas-bench-delta-XXXXXX")
trap 'rm -rf "$dir"' EXIT

/usr/bin/python3 - "$bin" "$dir" "$reps" <<'PY'
import json, os, shutil, statistics, subprocess, sys, time
from pathlib import Path
sys.path.insert(0, "test/integration")
from harness import images, bundles
from harness.registry import start_registry, clean_env

binary, root, reps = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
env = clean_env({"HOME": str(root)})


def run(cmd):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"{[str(c) for c in cmd[:3]]} failed:\n{p.stderr[-3000:]}")
    return p


def timed(cmd):
    os.sync()  # no one else's writeback paid by the timed command
    t0 = time.monotonic()
    run(cmd)
    return time.monotonic() - t0


src = start_registry(root / "src", "plain")
targets = []
try:
    t0 = time.monotonic()
    bases = [images.make_layer(f"bdelta-base-{i}", 64 << 20) for i in range(3)]
    v1, v2 = [], []
    for i in range(10):
        kind = images.oci_image if i % 2 else images.docker_image
        img = kind([bases[i % 3], images.make_layer(f"bdelta-own-{i}", 16 << 20)])
        images.push(src, f"bench/app{i:02d}", "1", img)
        v1.append(src.ref(f"bench/app{i:02d}", "1"))
        if i == 0:  # v2 changes this image's own layer
            img = kind([bases[0], images.make_layer("bdelta-own-0-v2", 16 << 20)])
            images.push(src, "bench/app00", "2", img)
            v2.append(src.ref("bench/app00", "2"))
        else:
            v2.append(v1[-1])
    images.push(src, "bench/app10", "1", images.oci_image([bases[1], images.make_layer("bdelta-own-10", 16 << 20)]))
    v2.append(src.ref("bench/app10", "1"))  # v2 adds this image
    print(f"v1: 10 images (3 shared 64 MiB bases, 16 MiB own layers); v2: one own layer changed, one image added; "
          f"built and pushed in {time.monotonic() - t0:.0f} s; {os.cpu_count()} cores; median of {reps} loads",
          flush=True)
    m1 = bundles.project(root / "v1", v1, version="1")
    m2 = bundles.project(root / "v2", v2, version="2")
    key, offline = root / "k", root / "offline"
    run([binary, "keygen", "-o", key])
    run([binary, "keygen", "-o", offline])
    cache = root / "cache"

    def pack(manifest, out, *extra):
        run([binary, "pack", "-q", "-f", manifest, "-o", out, "--key", f"{key}.key", "--plain-http", "--cache",
             cache, *extra])

    def fresh_with_v1(name):
        t = start_registry(root / name, "plain")
        targets.append(t)
        out = root / f"{name}-out1"
        run([binary, "load", "-q", root / "v1.tar", "--registry", f"{t.host}/airgap", "--key", f"{key}.pub",
             "--plain-http", "-o", out, "--inventory-key", f"{offline}.key"])
        return t, out

    def load(bundle, t, out):
        return timed([binary, "load", "-q", bundle, "--registry", f"{t.host}/airgap", "--key", f"{key}.pub",
                      "--plain-http", "-o", out])

    pack(m1, root / "v1.tar")
    r, out1 = fresh_with_v1("r")
    t_inv = timed([binary, "inventory", "--registry", f"{r.host}/airgap", "--from-lock", out1 / "images.lock.json",
                   "-o", root / "inv-cmd.json", "--key", f"{offline}.key", "--plain-http"])
    pack(m2, root / "v2-full.tar")
    pack(m2, root / "v2-delta.tar", "--have", out1 / "inventory.json", "--have-key", f"{offline}.pub")
    doc = bundles.bundle_json(root / "v2-delta.tar")
    assumed = sum(a["size"] for a in doc["assumed"])
    full_size = (root / "v2-full.tar").stat().st_size
    delta_size = (root / "v2-delta.tar").stat().st_size
    full_times, delta_times = [], []
    for i in range(reps):  # the two take turns going first
        order = [("full", root / "v2-full.tar", full_times), ("delta", root / "v2-delta.tar", delta_times)]
        for name, bundle, times in (order if i % 2 == 0 else order[::-1]):
            t, _ = fresh_with_v1(f"{name}{i}")
            times.append(load(bundle, t, root / f"{name}{i}-out2"))
            t.stop()
            shutil.rmtree(root / f"{name}{i}", ignore_errors=True)  # its storage: the disk is shared
    fm, dm = statistics.median(full_times), statistics.median(delta_times)
    print(f"{'':28} {'bundle size':>14} {'load (median)':>14}")
    print(f"{'v2 full bundle':28} {full_size / 2**20:11.1f} MiB {fm:12.2f} s")
    print(f"{'v2 delta (pack --have)':28} {delta_size / 2**20:11.1f} MiB {dm:12.2f} s")
    print(f"delta / full: {100 * delta_size / full_size:.1f}% of the bytes, {100 * dm / fm:.0f}% of the load time; "
          f"{len(doc['assumed'])} layers ({assumed / 2**20:.0f} MiB) assumed present")
    print(f"aas-bundle inventory --from-lock (10 images): {t_inv:.2f} s")
finally:
    for t in targets:
        t.stop()
    src.stop()
PY
