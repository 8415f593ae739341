#!/usr/bin/env bash
# The test suite built with clang under AddressSanitizer + UndefinedBehaviorSanitizer, plus a short run of
# every libFuzzer target (tests/fuzz). The last line is "N passed, N failed", like tools/run_tests.sh.
# usage: tools/sanitize.sh [meson test arguments]     (build folder: $SAQ_SAN_BUILD_DIR, default build-san)
set -uo pipefail
cd "$(dirname "$0")/.."
build=${SAQ_SAN_BUILD_DIR:-build-san}
if [ ! -f "$build/build.ninja" ]; then
  # -O1, as the sanitizers' documentation advises (and ~15% quicker to compile than -O3); no benchmarks: they
  # are no tests
  CXX=clang++ meson setup "$build" -Db_sanitize=address,undefined -Db_lundef=false -Dfuzz=true -Doptimization=1 \
    -Dbenchmarks=false >/dev/null ||
    { echo "0 passed, 1 failed"; exit 1; }
fi
if ! ninja -C "$build"; then echo "0 passed, 1 failed"; exit 1; fi
# LibTorch keeps global registries alive until exit: leak reports would be about them, not about this code.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:alloc_dealloc_mismatch=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# The third-party check builds an out-of-tree plugin against the installed SDK: a plain build's job.
tests=(sdk core plugins host host_deploy fuzz_pipeline fuzz_idx fuzz_pickle fuzz_cifar fuzz_torch_file fuzz_resume fuzz_checkpoint)
meson test -C "$build" --print-errorlogs --num-processes 2 "${@:-${tests[@]}}"
rc=$?
python3 tools/count_tests.py "$build/meson-logs/testlog.json"
exit $rc
