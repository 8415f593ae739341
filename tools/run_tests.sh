#!/usr/bin/env bash
# Builds what is missing and runs the whole test suite; the last line is "N passed, N failed".
# usage: tools/run_tests.sh [meson test arguments, e.g. a suite name]
set -uo pipefail
cd "$(dirname "$0")/.."
build=${SAQ_BUILD_DIR:-build}
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
if ! ninja -C "$build"; then echo "0 passed, 1 failed"; exit 1; fi
meson test -C "$build" --print-errorlogs --num-processes 2 "$@"
rc=$?
python3 tools/count_tests.py "$build/meson-logs/testlog.json"
exit $rc
