#!/usr/bin/env bash
# Runs one libFuzzer target from seed folders, at most SECONDS; arguments starting with "-" go to libFuzzer
# (the test suite passes -seed=1 -runs=N, so a run is the same on every machine). New inputs go to a scratch
# corpus, emptied first, never to the seed folders in the source tree. A crash leaves its input as crash-* in
# the current folder and fails.
# usage: tools/run_fuzzer.sh FUZZ_EXE SECONDS SCRATCH_CORPUS [-libFuzzer_flag]... [SEED_DIR]...
set -euo pipefail
exe=$1 seconds=$2 scratch=$3
shift 3
rm -rf "$scratch"
mkdir -p "$scratch"
flags=() seeds=()
for a in "$@"; do
  if [[ $a == -* ]]; then flags+=("$a"); elif [ -d "$a" ]; then seeds+=("$a"); fi
done
exec "$exe" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 "${flags[@]}" \
  "$scratch" "${seeds[@]}"
