#!/usr/bin/env bash
# Wall time of image discovery over the AI App Store folder (../shared/corpus/appstore-ai/k8s):
# `aas-bundle images -f manifests/ai-appstore.yaml` and the whole-folder scan, then over every
# chart of the real-chart corpus (../shared/corpus/charts/*), best and median of N runs.
# Each corpus chart must stay under 1 s (exit 1 otherwise).
# Usage: scripts/bench-discovery.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
k8s=../shared/corpus/appstore-ai/k8s
bin=build/src/cli/aas-bundle
charts=../shared/corpus/charts
[ -d "$k8s" ] || [ -d "$charts" ] || { echo "bench-discovery: ../shared/corpus is absent (../shared not beside the repo)"; exit 0; }
[ -x "$bin" ] || { meson setup build >/dev/null 2>&1 || true; ninja -C build src/cli/aas-bundle >/dev/null; }

measure() { # label, command...
    local label=$1; shift
    local times=()
    for _ in $(seq "$runs"); do
        local t0 t1
        t0=$(date +%s%N)
        "$@" >/dev/null 2>&1 || true
        t1=$(date +%s%N)
        times+=($(( (t1 - t0) / 1000000 )))
    done
    IFS=$'\n' sorted=($(sort -n <<<"${times[*]}")); unset IFS
    median=${sorted[$((runs / 2))]}
    printf '%-46s best %5d ms   median %5d ms   (%d runs)\n' "$label" "${sorted[0]}" "$median" "$runs"
}

if [ -d "$k8s" ]; then
    echo "image discovery on the AI App Store ($(find "$k8s" -type f | wc -l) files), $(nproc) cores"
    measure "images -f manifests/ai-appstore.yaml" "$bin" images -f manifests/ai-appstore.yaml --k8s "$k8s" --json
    measure "images k8s/ (whole folder, chart defaults)" "$bin" images "$k8s" --json
fi
slow=0
if [ -d "$charts" ]; then
    echo
    echo "image discovery per chart of the real-chart corpus ($charts), limit 1000 ms"
    for c in "$charts"/*/; do
        c=${c%/}
        measure "images $(basename "$c")" "$bin" images "$c" --json
        [ "$median" -lt 1000 ] || { echo "  ^ over 1 s"; slow=1; }
    done
fi
exit $slow
