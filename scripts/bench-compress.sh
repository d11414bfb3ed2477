#!/usr/bin/env bash
# Evidence for the bundle's default compression: what zstd does to (a) a realistic,
# already-gzipped image layer and (b) the same data as an uncompressed tar (what an OCI
# layout or `docker save` holds for uncompressed layers, and the bundle's own metadata).
# The data is this machine's /usr/lib/x86_64-linux-gnu and /usr/share/doc (binaries, text),
# SIZE bytes of it (default 300M); no network. Prints size ratio (output/input), seconds
# (best of 3 runs), compression and decompression MB/s (both of the uncompressed input),
# then a one-line conclusion computed from the figures. Timings are only as good as the
# machine is idle: the load average is printed with them.
# Usage: scripts/bench-compress.sh [SIZE]      e.g. SIZE=100M for a quicker run
set -euo pipefail
size=${1:-300M}
command -v zstd >/dev/null || { echo "bench-compress: zstd is not installed (apt-get install zstd)"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/aas-bench-compress-XXXXXX")
trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }

load=$(cut -d' ' -f1 /proc/loadavg)
echo "preparing $size of layer data from /usr/lib/x86_64-linux-gnu and /usr/share/doc ($(nproc) cores, load average $load)"
tar c /usr/lib/x86_64-linux-gnu /usr/share/doc 2>/dev/null | head -c "$size" >"$work/layer.tar" || true
t0=$(now)
gzip -6 -c "$work/layer.tar" >"$work/layer.tar.gz"
t1=$(now)
gzip_s=$(echo "$t1 - $t0" | bc -l)

results="$work/results"
: >"$results"
# best SECONDS-VAR CMD...: the best wall time of 3 runs of CMD (stdout discarded), into SECONDS-VAR.
best() {
    local var=$1 b="" t0 t1 s
    shift
    for _ in 1 2 3; do
        t0=$(now)
        "$@" >/dev/null
        t1=$(now)
        s=$(echo "$t1 - $t0" | bc -l)
        if [ -z "$b" ] || [ "$(echo "$s < $b" | bc -l)" = 1 ]; then b=$s; fi
    done
    printf -v "$var" '%s' "$b"
}

# run INPUT LABEL ARGS...: compression and decompression (best of 3 each), appended to $results.
run() {
    local input=$1 label=$2
    shift 2
    local out="$work/out.zst" in_bytes out_bytes cs ds
    in_bytes=$(stat -c %s "$input")
    zstd -q -f "$@" -c "$input" >"$out"
    out_bytes=$(stat -c %s "$out")
    best cs zstd -q -f "$@" -c "$input"
    best ds zstd -q -d -c "$out"
    rm -f "$out"
    echo "$label $(basename "$input") $in_bytes $out_bytes $cs $ds" >>"$results"
}

for input in "$work/layer.tar.gz" "$work/layer.tar"; do
    run "$input" "zstd-1" -1
    run "$input" "zstd-3" -3
    run "$input" "zstd-3-T2" -3 -T2
done

awk -v cores="$(nproc)" -v load="$load" -v gz_in="$(stat -c %s "$work/layer.tar")" -v gz_out="$(stat -c %s "$work/layer.tar.gz")" -v gz_s="$gzip_s" '
function mb(b) { return b / 1e6 }
BEGIN {
    printf "%-11s %-12s %9s %9s %7s %7s %9s %9s\n", "codec", "input", "in MB", "out MB", "ratio", "sec", "comp MB/s", "dec MB/s"
    printf "%-11s %-12s %9.1f %9.1f %7.3f %7.2f %9.1f %9s\n", "(gzip -6)", "layer.tar", mb(gz_in), mb(gz_out), gz_out / gz_in, gz_s, mb(gz_in) / gz_s, "-"
}
{
    label = $1; input = $2; in_b = $3; out_b = $4; cs = $5; ds = $6
    if (cs <= 0) cs = 0.001
    if (ds <= 0) ds = 0.001
    printf "%-11s %-12s %9.1f %9.1f %7.3f %7.2f %9.1f %9.1f\n", label, input, mb(in_b), mb(out_b), out_b / in_b, cs, mb(in_b) / cs, mb(in_b) / ds
    key = label "|" input
    ratio[key] = out_b / in_b; speed[key] = mb(in_b) / cs
}
END {
    g = "layer.tar.gz"; t = "layer.tar"
    saved_gz = (1 - ratio["zstd-3|" g]) * 100
    extra3 = (ratio["zstd-1|" t] - ratio["zstd-3|" t]) * 100
    mt = speed["zstd-3-T2|" t] / speed["zstd-3|" t]
    verdict = (saved_gz < 5) ? "under 5%: not worth the CPU for bundles of gzipped layers" : "5% or more: worth it even for gzipped layers"
    level = (extra3 >= 1) ? "-3" : "-1"
    workers = (mt >= 1.2) ? " with 2 workers" : sprintf(" (2 workers gave no speed-up here%s)", (load > cores / 2) ? ", but the machine was busy: load average " load : "")
    printf "\nconclusion: on an already-gzipped layer zstd -3 saves %.1f%% (%s); on an uncompressed tar -3 is %.1f points smaller than -1 and 2 workers run %.2fx one (%.0f MB/s), so for compressible content use zstd %s%s.\n", saved_gz, verdict, extra3, mt, speed["zstd-3-T2|" t], level, workers
}' "$results"
