#!/usr/bin/env bash
# Runs one libFuzzer target for a fixed time from seed folders; new inputs go to a scratch corpus, never to the
# seed folders in the source tree. A crash leaves its input as crash-* in the current folder and fails.
# usage: tools/run_fuzzer.sh FUZZ_EXE SECONDS SCRATCH_CORPUS [SEED_DIR]...
set -euo pipefail
exe=$1 seconds=$2 scratch=$3
shift 3
mkdir -p "$scratch"
seeds=()
for d in "$@"; do [ -d "$d" ] && seeds+=("$d"); done
exec "$exe" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 "$scratch" "${seeds[@]}"
