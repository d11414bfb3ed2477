#!/usr/bin/env bash
# The speed issue's comparison, side by side in one run: 30 images (~1.07 GiB unique:
# 3 shared base layers of 64 MiB, one 29 MiB layer of each image's own; Docker and OCI
# media types mixed) in a local docker-registry on 127.0.0.1, then
#   pack, cold and warm cache (.tar)     vs  skopeo copy x30 into one OCI layout + tar --zstd
#   first load into an empty registry    vs  untar + skopeo copy --preserve-digests x30
#   second load, everything present      vs  the same skopeo run again
#   verify                               vs  sha256sum of the bundle
# Each: median wall time of REPS runs (default 3) and the largest peak RSS; the ratio is
# the alternative's time over aas-bundle's (above 1: aas-bundle is faster). Every timed
# command starts after a sync (untimed), and the two sides take turns going first; the
# disk's own write rate is printed at the end.
# Usage: scripts/bench.sh [REPS]    Environment: AAS_BUNDLE (default build/src/cli/aas-bundle)
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3}
bin=${AAS_BUNDLE:-build/src/cli/aas-bundle}
[ -x "$bin" ] || { meson setup build >/dev/null 2>&1 || true; ninja -C build src/cli/aas-bundle >/dev/null; }
bin=$(realpath "$bin")
dir=$(mktemp -d "${TMPDIR:-/tmp}/aas-bench-XXXXXX")
trap 'rm -rf "$dir"' EXIT

/usr/bin/python3 - "$bin" "$dir" "$reps" <<'PY'
import os, shutil, statistics, subprocess, sys, time
from pathlib import Path
sys.path.insert(0, "test/integration")
from harness import images, bundles
from harness.registry import start_registry, clean_env

binary, root, reps = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
env = clean_env({"HOME": str(root)})
policy = root / "policy.json"
policy.write_text('{"default":[{"type":"insecureAcceptAnything"}]}')
skopeo = ["skopeo", "--policy", str(policy)]


def timed(cmd, cwd=None):
    # Each command starts with no one else's data waiting to be written: without this, the
    # command that runs next pays for the writeback of the one before (this disk writes
    # about 1 GiB fast, then far slower; see the rate printed at the end).
    os.sync()
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "harness.peakrss", *map(str, cmd)], cwd="test/integration",
                       capture_output=True, text=True, env=env)
    secs = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit(f"{cmd[:3]} failed:\n{p.stderr[-3000:]}")
    return secs, int(p.stderr.strip().rsplit("peak_rss_kib=", 1)[1]) / 1024


def series(steps):
    """steps: list of commands run in order as one measured unit; returns (secs, peak MiB)."""
    total, peak = 0.0, 0.0
    for cmd in steps:
        s, r = timed(cmd)
        total += s
        peak = max(peak, r)
    return total, peak


rows = []


def compare(label, ours, theirs):
    """ours/theirs: functions of the repetition index returning (secs, peak MiB)."""
    a, b = [], []
    for i in range(reps):  # alternate who goes first, so neither always runs after the other's writes
        for side, fn in ((a, ours), (b, theirs))[:: 1 if i % 2 == 0 else -1]:
            side.append(fn(i))
    ta, tb = statistics.median(x[0] for x in a), statistics.median(x[0] for x in b)
    rows.append((label, ta, max(x[1] for x in a), tb, max(x[1] for x in b)))
    print(f"{label:<34} aas-bundle {ta:7.2f} s ({rows[-1][2]:5.0f} MiB)   alternative {tb:7.2f} s "
          f"({rows[-1][4]:5.0f} MiB)   ratio {tb / ta:5.2f}x", flush=True)


src = start_registry(root / "src", "plain")
targets = []
try:
    t0 = time.monotonic()
    bases = [images.make_layer(f"bench-base-{i}", 64 << 20) for i in range(3)]
    refs = []
    for i in range(30):
        layers = [bases[i % 3], images.make_layer(f"bench-own-{i}", 29 << 20)]
        img = (images.oci_image if i % 2 else images.docker_image)(layers)
        images.push(src, f"bench/app{i:02d}", "1", img)
        refs.append(src.ref(f"bench/app{i:02d}", "1"))
    unique = sum(b.size for b in bases) + 30 * (29 << 20)
    print(f"30 images, {unique / 2**30:.2f} GiB unique (3 shared bases), built and pushed in "
          f"{time.monotonic() - t0:.0f} s; {os.cpu_count()} cores; median of {reps} runs", flush=True)
    manifest = bundles.project(root / "proj", refs)
    key = root / "k"
    subprocess.run([binary, "keygen", "-o", key], check=True, capture_output=True)
    pack = lambda out, cache: [binary, "pack", "-q", "-f", manifest, "-o", out, "--key", f"{key}.key",  # noqa: E731
                               "--plain-http", "--cache", cache]

    def pack_cold(i):
        shutil.rmtree(root / f"cache{i}", ignore_errors=True)
        (root / "b.tar").unlink(missing_ok=True)
        return series([pack(root / "b.tar", root / f"cache{i}")])

    def skopeo_pack(i):
        lay = root / "layout"
        shutil.rmtree(lay, ignore_errors=True)
        (root / "layout.tar.zst").unlink(missing_ok=True)
        steps = [[*skopeo, "copy", "--src-tls-verify=false", f"docker://{r}", f"oci:{lay}:{r.split('/', 1)[1]}"]
                 for r in refs]
        steps.append(["tar", "--zstd", "-cf", root / "layout.tar.zst", "-C", root, "layout"])
        return series(steps)

    compare("pack, cold cache (.tar)", pack_cold, skopeo_pack)
    compare("pack, warm cache (.tar)", lambda i: series([pack(root / f"w{i}.tar", root / "cache0")]), skopeo_pack)

    def fresh_target():
        t = start_registry(root / f"t{len(targets)}", "plain")
        targets.append(t)
        return t

    state = {}

    def load_first(i):
        t = fresh_target()
        state["ours"] = t
        out = root / f"out{i}"
        shutil.rmtree(out, ignore_errors=True)
        return series([[binary, "load", "-q", root / "b.tar", "--registry", f"{t.host}/airgap", "--key",
                        f"{key}.pub", "--plain-http", "-o", out]])

    def skopeo_push(t):
        lay = root / "untar" / "layout"
        return [[*skopeo, "copy", "--preserve-digests", "--dest-tls-verify=false",
                 f"oci:{lay}:{r.split('/', 1)[1]}", f"docker://{t.host}/airgap/{r.split('/', 1)[1]}"] for r in refs]

    def skopeo_first(i):
        t = fresh_target()
        state["theirs"] = t
        shutil.rmtree(root / "untar", ignore_errors=True)
        (root / "untar").mkdir()
        return series([["tar", "--zstd", "-xf", root / "layout.tar.zst", "-C", root / "untar"], *skopeo_push(t)])

    compare("first load, empty registry", load_first, skopeo_first)

    def load_again(i):
        out = root / f"again{i}"
        shutil.rmtree(out, ignore_errors=True)
        return series([[binary, "load", "-q", root / "b.tar", "--registry", f"{state['ours'].host}/airgap",
                        "--key", f"{key}.pub", "--plain-http", "-o", out]])

    compare("second load, everything present", load_again, lambda i: series(skopeo_push(state["theirs"])))
    compare("verify", lambda i: series([[binary, "verify", root / "b.tar", "--key", f"{key}.pub"]]),
            lambda i: series([["sha256sum", root / "b.tar"]]))
    # The disk's own rate, for reading the figures above: 1 GiB written and synced, twice.
    for n in range(2):
        os.sync()
        t0 = time.monotonic()
        subprocess.run(["dd", "if=/dev/zero", f"of={root / 'dd'}", "bs=1M", "count=1024", "conv=fdatasync",
                        "status=none"], check=True)
        print(f"disk: 1 GiB written and synced in {time.monotonic() - t0:.2f} s "
              f"({1024 / (time.monotonic() - t0):.0f} MiB/s)", flush=True)
        (root / "dd").unlink()
finally:
    for t in targets:
        t.stop()
    src.stop()
PY
