#!/usr/bin/env bash
# `aas-bundle pack` and `load` side by side with `skopeo copy` on the same work: pulling one
# image of LAYERS x MIB MiB of incompressible layers from a local docker-registry
# (127.0.0.1) into an OCI layout (skopeo) or into a bundle (pack, .tar and .tar.zst, cold
# cache, then warm cache); then pushing it into another local registry from the layout
# (skopeo) or from the bundle (load, which also verifies it and rewrites the values).
# Prints wall time and peak RSS of each.
# Usage: scripts/bench-pack.sh [LAYERS] [MIB]   (default 4 x 64 MiB)
# Environment: AAS_BUNDLE (binary, default build/src/cli/aas-bundle).
set -euo pipefail
cd "$(dirname "$0")/.."
layers=${1:-4}
mib=${2:-64}
bin=${AAS_BUNDLE:-build/src/cli/aas-bundle}
[ -x "$bin" ] || { meson setup build >/dev/null 2>&1 || true; ninja -C build src/cli/aas-bundle >/dev/null; }
bin=$(realpath "$bin")
dir=$(mktemp -d "${TMPDIR:-/tmp}/aas-bench-pack-XXXXXX")
trap 'rm -rf "$dir"' EXIT

/usr/bin/python3 - "$bin" "$dir" "$layers" "$mib" <<'PY'
import os, subprocess, sys, time
from pathlib import Path
sys.path.insert(0, "test/integration")
from harness import images, bundles
from harness.registry import start_registry, clean_env

binary, root, layers, mib = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
reg = start_registry(root, "plain")
try:
    img = images.oci_image([images.make_layer(f"bench-{i}", mib << 20) for i in range(layers)])
    images.push(reg, "bench/app", "1", img)
    total = sum(l.size for l in img.layers)
    ref = reg.ref("bench/app", "1")
    manifest = bundles.project(root / "proj", [ref])
    env = clean_env({"HOME": str(root)})

    def run(label, cmd):
        t0 = time.monotonic()
        p = subprocess.run([sys.executable, "-m", "harness.peakrss", *cmd], cwd="test/integration",
                           capture_output=True, text=True, env=env)
        secs = time.monotonic() - t0
        if p.returncode != 0:
            sys.exit(f"{label} failed:\n{p.stderr}")
        rss = int(p.stderr.strip().rsplit("peak_rss_kib=", 1)[1]) / 1024
        print(f"{label:<44} {secs:7.2f} s  {total / secs / 2**20:7.1f} MiB/s  peak RSS {rss:6.1f} MiB")

    print(f"one image, {layers} x {mib} MiB layers ({total / 2**20:.0f} MiB), registry on 127.0.0.1, {os.cpu_count()} cores")
    policy = root / "policy.json"
    policy.write_text('{"default":[{"type":"insecureAcceptAnything"}]}')
    run("skopeo copy --all docker:// -> oci: layout",
        ["skopeo", "--policy", str(policy), "copy", "--all", "--src-tls-verify=false", f"docker://{ref}",
         f"oci:{root / 'skopeo-layout'}:app"])
    key = root / "k"
    subprocess.run([binary, "keygen", "--out", str(key)], check=True, capture_output=True)
    for name, cache in (("b.tar", "c1"), ("b.tar.zst", "c2")):
        run(f"aas-bundle pack -o {name} (cold cache)",
            [binary, "pack", "-q", "-f", str(manifest), "-o", str(root / name), "--key", f"{key}.key",
             "--plain-http", "--cache", str(root / cache)])
    run("aas-bundle pack -o b.tar.zst (warm cache)",
        [binary, "pack", "-q", "-f", str(manifest), "-o", str(root / "b2.tar.zst"), "--key", f"{key}.key",
         "--plain-http", "--cache", str(root / "c2")])
    target = start_registry(root / "t", "plain")
    try:
        run("skopeo copy --all oci: layout -> docker://",
            ["skopeo", "--policy", str(policy), "copy", "--all", "--dest-tls-verify=false",
             f"oci:{root / 'skopeo-layout'}:app", f"docker://{target.host}/skopeo/app:1"])
        run("aas-bundle load b.tar.zst (verify, push, rewrite)",
            [binary, "load", "-q", str(root / "b.tar.zst"), "--registry", f"{target.host}/airgap", "--key",
             f"{key}.pub", "--plain-http", "--out", str(root / "out")])
    finally:
        target.stop()
finally:
    reg.stop()
PY
