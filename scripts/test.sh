#!/usr/bin/env bash
# Runs every test of aas-bundle: installs what is missing, checks the format of every C++
# file (clang-format --dry-run with .clang-format; `clang-format -i FILE` applies it),
# builds (warnings as errors), runs the unit tests, the unit tests again under ASan+UBSan,
# the libFuzzer targets for a bounded time (FUZZ_SECONDS each, default 20), and the
# integration tests against real registries started on 127.0.0.1. Ends with one line "N passed, N failed".
#
#   scripts/test.sh            everything
#   scripts/test.sh -k copy    pass extra arguments to pytest (integration tests only)
#
# The soak of test_faults.py (pack, verify and load of several GiB) runs only when
# AAS_SOAK_GIB is set to its size in GiB (e.g. AAS_SOAK_GIB=3); this script does not set
# it, and pytest reports the soak as skipped.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/setup.sh || { echo "setup failed"; exit 1; }

jobs=$(nproc 2>/dev/null || echo 2)
passed=0
failed=0
failures=()

# The failed test cases of a doctest log with their failed checks, so that a log names them.
show_doctest_failures() {
    grep -E -B4 -A3 ': (ERROR|FATAL ERROR):' "$1" | head -n 80
}

# Reads doctest's summary line and adds its counts.
count_doctest() {
    local log=$1 line
    line=$(grep -E '^\[doctest\] test cases:' "$log" | tail -n 1)
    local p f
    p=$(sed -E 's/.*\| *([0-9]+) passed.*/\1/' <<<"$line")
    f=$(sed -E 's/.*\| *([0-9]+) failed.*/\1/' <<<"$line")
    [[ $p =~ ^[0-9]+$ ]] || p=0
    [[ $f =~ ^[0-9]+$ ]] || f=1
    passed=$((passed + p)); failed=$((failed + f))
}

build() { # build DIR [meson options...]
    local dir=$1; shift
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" -Dwerror=true "$@" >/dev/null || return 1
    fi
    ninja -C "$dir" -j"$jobs" || return 1
}

echo "== format (clang-format --dry-run -Werror, .clang-format)"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    mapfile -t cxx_files < <(git ls-files '*.cpp' '*.hpp')
else
    mapfile -t cxx_files < <(find src include test -name '*.[ch]pp' | sort)
fi
format_log=$(mktemp)
if clang-format --dry-run -Werror "${cxx_files[@]}" 2>"$format_log"; then
    echo "${#cxx_files[@]} files formatted"
    passed=$((passed + 1))
else
    grep -E '^[^ ]+:[0-9]+:[0-9]+: error' "$format_log" | cut -d: -f1 | sort | uniq -c | head -n 20
    echo "not formatted: run clang-format -i on the files above"
    failed=$((failed + 1)); failures+=("format")
fi
rm -f "$format_log"

echo "== build (warnings are errors)"
if ! build build; then echo "build failed"; echo "0 passed, 1 failed"; exit 1; fi

echo "== unit tests"
ut_log=$(mktemp)
./build/test/unit-tests --no-intro=true 2>&1 | tee "$ut_log" | tail -n 4
rc=${PIPESTATUS[0]}
count_doctest "$ut_log"
[ "$rc" -eq 0 ] || { show_doctest_failures "$ut_log"; failures+=("unit tests"); }

echo "== unit tests under ASan+UBSan"
if build build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug; then
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        ./build-asan/test/unit-tests --no-intro=true 2>&1 | tee "$ut_log" | tail -n 4
    rc=${PIPESTATUS[0]}
    count_doctest "$ut_log"
    [ "$rc" -eq 0 ] || { show_doctest_failures "$ut_log"; failures+=("unit tests (sanitizers)"); }
else
    failures+=("ASan build"); failed=$((failed + 1))
fi
rm -f "$ut_log"

echo "== fuzzing (libFuzzer, ${FUZZ_SECONDS:=20} s per target)"
if CXX=clang++ build build-fuzz -Dfuzzers=true -Dtests=disabled -Db_sanitize=address,undefined \
        -Db_lundef=false -Dbuildtype=debugoptimized >/dev/null; then
    fuzz_dir=$(mktemp -d)
    for target in fuzz_reference fuzz_values fuzz_template fuzz_bundle fuzz_tar_index fuzz_parts; do
        corpus="$fuzz_dir/$target"
        mkdir -p "$corpus"
        seeds="test/fuzz/corpus/${target#fuzz_}"
        [ -d "$seeds" ] && cp "$seeds"/* "$corpus"/
        if ./build-fuzz/test/fuzz/$target -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
                -max_len=8192 -artifact_prefix="$fuzz_dir/$target-" "$corpus" >"$fuzz_dir/$target.log" 2>&1; then
            echo "$target: $(grep -oE 'Done [0-9]+ runs' "$fuzz_dir/$target.log" | tail -n 1), no crash or hang"
            passed=$((passed + 1))
        else
            echo "$target FAILED:"; grep -E 'ERROR|SUMMARY|Test unit written' "$fuzz_dir/$target.log" | head -n 5
            failed=$((failed + 1)); failures+=("$target")
        fi
    done
    rm -rf "$fuzz_dir"
else
    failures+=("fuzz build"); failed=$((failed + 1))
fi

echo "== integration tests (real registries on 127.0.0.1)"
it_log=$(mktemp)
AAS_BUNDLE="$root/build/src/cli/aas-bundle" /usr/bin/python3 -m pytest -q -p no:cacheprovider \
    test/integration "$@" 2>&1 | tee "$it_log"
rc=${PIPESTATUS[0]}
summary=$(grep -E '^(=+ )?[0-9]+ (passed|failed)|^=+ .*(passed|failed|error)' "$it_log" | tail -n 1)
ip=$(grep -oE '[0-9]+ passed' <<<"$summary" | grep -oE '[0-9]+' || echo 0)
if_=0
for n in $(grep -oE '[0-9]+ (failed|errors?)' <<<"$summary" | grep -oE '^[0-9]+'); do if_=$((if_ + n)); done
passed=$((passed + ${ip:-0})); failed=$((failed + ${if_:-0}))
if [ "$rc" -ne 0 ]; then
    failures+=("integration tests")
    [ "${if_:-0}" -gt 0 ] || failed=$((failed + 1))
fi
rm -f "$it_log"

echo
if [ ${#failures[@]} -gt 0 ]; then echo "FAILED: ${failures[*]}"; fi
echo "$passed passed, $failed failed"
[ ${#failures[@]} -eq 0 ]
