#!/usr/bin/env bash
# `aas-bundle verify` against `sha256sum` on the same ~1 GiB bundle, in the same run:
# wall time (best of RUNS), the ratio, and verify's peak RSS.
#
# The bundle is packed from an OCI layout of incompressible layers (no registry needed):
# 8 images, 8 x 128 MiB of layers (one shared base), so what is measured is hashing and
# decoding, not compression. Usage: scripts/bench-verify.sh [RUNS] [zst|tar]
# Environment: AAS_BUNDLE (binary, default build/src/cli/aas-bundle), BENCH_DIR (scratch
# folder, default a new one under $TMPDIR, removed at the end; needs ~3 GiB).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
kind=${2:-zst}
bin=${AAS_BUNDLE:-build/src/cli/aas-bundle}
[ -x "$bin" ] || { meson setup build >/dev/null 2>&1 || true; ninja -C build src/cli/aas-bundle >/dev/null; }
bin=$(realpath "$bin")
dir=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/aas-bench-verify-XXXXXX")}
[ -n "${BENCH_DIR:-}" ] || trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir"

echo "== making a ~1 GiB bundle in $dir"
/usr/bin/python3 - "$dir" <<'PY'
import hashlib, json, os, sys
root = sys.argv[1]
lay = os.path.join(root, "layout")
os.makedirs(os.path.join(lay, "blobs", "sha256"), exist_ok=True)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(lay, "blobs", "sha256", d), "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)
def layer(size):
    h, n, tmp = hashlib.sha256(), 0, os.path.join(lay, "tmp")
    with open(tmp, "wb") as f:
        while n < size:
            b = os.urandom(min(8 << 20, size - n))
            h.update(b); f.write(b); n += len(b)
    d = h.hexdigest()
    os.rename(tmp, os.path.join(lay, "blobs", "sha256", d))
    return "sha256:" + d, size
mt = "application/vnd.oci.image.layer.v1.tar"
base = layer(128 << 20)
entries, refs = [], []
for i in range(8):
    own = layer(112 << 20)
    cfg = put(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [base[0], own[0]]}}).encode())
    man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg[0], "size": cfg[1]},
                      "layers": [{"mediaType": mt, "digest": base[0], "size": base[1]},
                                 {"mediaType": mt, "digest": own[0], "size": own[1]}]}).encode()
    md = put(man)
    entries.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md[0], "size": md[1],
                    "annotations": {"org.opencontainers.image.ref.name": f"app{i}"}})
    refs.append(f"bench/app{i}:1")
with open(os.path.join(lay, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": entries}, f)
with open(os.path.join(lay, "oci-layout"), "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
k8s = os.path.join(root, "k8s")
os.makedirs(k8s, exist_ok=True)
with open(os.path.join(k8s, "app.yaml"), "w") as f:
    f.write("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n      containers:\n"
            + "".join(f"        - name: c{i}\n          image: {r}\n" for i, r in enumerate(refs)))
with open(os.path.join(root, "bundle.yaml"), "w") as f:
    f.write("apiVersion: aas-bundle/v1\nkind: Bundle\nname: bench\nversion: 1.0.0\nk8s: k8s\nmanifests: [app.yaml]\nimages:\n"
            + "".join(f"  - ref: {r}\n    from: oci:{lay}:app{i}\n" for i, r in enumerate(refs)))
PY
"$bin" keygen --out "$dir/signer" --force >/dev/null
out="$dir/bench.tar"; [ "$kind" = zst ] && out="$dir/bench.tar.zst"
"$bin" -q pack -f "$dir/bundle.yaml" --key "$dir/signer.key" -o "$out" --cache "$dir/cache" >/dev/null
rm -rf "$dir/layout" "$dir/cache"
size=$(stat -c %s "$out")
echo "bundle $(basename "$out"): $((size / 1048576)) MiB, $(nproc) cores, $(grep -q sha_ni /proc/cpuinfo && echo SHA-NI || echo no SHA-NI)"

best() { # command... -> best wall time in ms over $runs runs
    local b=
    for _ in $(seq "$runs"); do
        local t0 t1
        t0=$(date +%s%N)
        "$@" >/dev/null 2>&1
        t1=$(date +%s%N)
        local ms=$(( (t1 - t0) / 1000000 ))
        if [ -z "$b" ] || [ "$ms" -lt "$b" ]; then b=$ms; fi
    done
    echo "$b"
}

cat "$out" >/dev/null # warm the page cache for both
sha=$(best sha256sum "$out")
ver=$(best "$bin" verify "$out" --key "$dir/signer.pub")
rss=$(cd test/integration && /usr/bin/python3 -m harness.peakrss "$bin" verify "$out" --key "$dir/signer.pub" 2>&1 >/dev/null |
      sed -n 's/^peak_rss_kib=//p')
"$bin" verify "$out" --key "$dir/signer.pub" >/dev/null # exit 0, or the script fails here
printf 'sha256sum            %6d ms  (%d MiB/s)\n' "$sha" $(( size * 1000 / 1048576 / sha ))
printf 'aas-bundle verify    %6d ms  (%d MiB/s)\n' "$ver" $(( size * 1000 / 1048576 / ver ))
awk -v v="$ver" -v s="$sha" 'BEGIN { printf "ratio verify/sha256sum %.2f (below 1: verify is faster)\n", v / s }'
echo "verify peak RSS      $((rss / 1024)) MiB"
