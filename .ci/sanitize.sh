#!/usr/bin/env bash
# Sanitizer and fuzzing stage of CI (called from tools/test.sh after the normal build and tests):
#   1. build-sanitize/ (clang, ASan+UBSan, CONVOY_FUZZ=ON): the library once, then
#      - the test subset below under ctest (any ASan/UBSan/LSan report fails it),
#      - fuzz/fuzz_load for $CONVOY_FUZZ_SECONDS (default 60) from fuzz/corpus (any finding fails);
#   2. build-tsan/ (gcc, TSan): test_concurrency and test_thread_pool.
# Both builds use CONVOY_NATIVE_ONLY=ON: Highway code compiled for this CPU's best target only,
# the one its kernels dispatch to (the Release build of test.sh tests every target). Measured
# on the 2-core AVX2 CI-size VM: ASan build 8m47s -> 5m38s, test_kernels under ASan 338 s -> 89 s;
# the whole of this script 19m21s -> 10m59s.
# Subset under ASan+UBSan, chosen for the 25-minute CI budget on 2 cores:
#   test_c_api           C API incl. every error path (LSan: no leaks on errors)
#   test_hostile_models  hostile models of issue 6
#   test_bad_input       the CLI on the malformed-model corpus (tests/gen/make_bad_models.py)
#   test_concurrency     sessions on many threads
#   test_thread_pool     the pool's hand-over between runs, polling and sleeping
#   test_passes          graph passes on small graphs
#   test_kernels         every kernel vs its naive reference on odd sizes (tails!)
# Left out: test_models, test_conformance, test_demo_accuracy, test_cli, test_npy, test_install
# (large models or slow under ASan; the code paths they add over the subset are covered by the
# fuzzer, which runs load + plan + one run under ASan+UBSan).
# Environment: CONVOY_FUZZ_SECONDS, CONVOY_JOBS (default: nproc), CONVOY_TEST_DATA (as test.sh),
# CONVOY_ASAN_DIR / CONVOY_TSAN_DIR (build directories, default build-sanitize / build-tsan).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

jobs=${CONVOY_JOBS:-$(nproc)}
fuzz_seconds=${CONVOY_FUZZ_SECONDS:-60}
export CONVOY_TEST_DATA=${CONVOY_TEST_DATA:-$HOME/.cache/convoy-testdata}
asan=${CONVOY_ASAN_DIR:-build-sanitize}
tsan=${CONVOY_TSAN_DIR:-build-tsan}
asan_tests=(test_c_api test_hostile_models test_bad_input test_concurrency test_thread_pool test_passes test_kernels)
# halt_on_error turns UBSan's recoverable reports into failures; leaks are checked at exit.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

stage() { echo "sanitize.sh: $* ($((SECONDS / 60))m$((SECONDS % 60))s)"; }

# ---- 1. ASan + UBSan (clang), plus the fuzz target from the same instrumented library ----
stage "configure build-sanitize (clang, ASan+UBSan)"
# -O1 with line tables only: ASan's usual setting; builds in 5m00s instead of 5m38s, runs as fast.
CC=clang CXX=clang++ cmake -S . -B "$asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" \
  -DCONVOY_SANITIZE=ON -DCONVOY_FUZZ=ON -DCONVOY_PYTHON=OFF -DCONVOY_NATIVE_ONLY=ON -DCONVOY_TEST_DATA="$CONVOY_TEST_DATA" >/dev/null
stage "build ${asan_tests[*]} fuzz_load convoy_cli"
cmake --build "$asan" -j"$jobs" --target "${asan_tests[@]}" fuzz_load convoy_cli
stage "ctest under ASan+UBSan"
regex="^($(IFS='|'; echo "${asan_tests[*]}"))\$"
ctest --test-dir "$asan" --output-on-failure -j"$jobs" -R "$regex"

stage "fuzz_load for ${fuzz_seconds} s"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# New inputs go to $work (fuzz/corpus is read only); a finding is written to build-sanitize/
# as crash-*/leak-*/timeout-*/oom-* and fails this script.
set +e
"$asan"/fuzz_load -max_total_time="$fuzz_seconds" -timeout=30 -rss_limit_mb=2048 -max_len=8192 \
  -print_final_stats=1 -artifact_prefix="$asan"/ "$work" fuzz/corpus >"$asan"/fuzz.log 2>&1
status=$?
set -e
grep -v NEW_FUNC "$asan"/fuzz.log | tail -25
if ((status != 0)); then
  echo "sanitize.sh: FAILED: the fuzzer found a problem (input saved in $asan/)" >&2
  exit "$status"
fi

# ---- 2. TSan (gcc) for the concurrency and thread pool tests ----
stage "configure build-tsan (gcc, TSan)"
# -O1 with line tables (-g1) as for ASan: file:line frames in reports, and each file compiles ~35%
# faster than at -O2 -g (kernels/winograd.cpp 8.0 -> 4.7-5.5 s; this build took 4m31s of a CI run
# that ended at 26m14s on the 2-core AVX2 VM at its slow level).
cmake -S . -B "$tsan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONVOY_PYTHON=OFF -DCONVOY_NATIVE_ONLY=ON \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
  -DCMAKE_C_FLAGS=-fsanitize=thread -DCMAKE_CXX_FLAGS=-fsanitize=thread \
  -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread \
  -DCONVOY_TEST_DATA="$CONVOY_TEST_DATA" >/dev/null
stage "build test_concurrency and test_thread_pool (TSan)"
cmake --build "$tsan" -j"$jobs" --target test_concurrency test_thread_pool
stage "ctest test_concurrency and test_thread_pool under TSan"
ctest --test-dir "$tsan" --output-on-failure -R '^(test_concurrency|test_thread_pool)$'

stage "all sanitizer stages passed"
