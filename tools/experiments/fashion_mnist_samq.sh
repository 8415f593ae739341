#!/usr/bin/env bash
# Mixed precision on Fashion-MNIST: the shipped SAMQ pipeline (configs/fashion_mnist_samq.toml: FP32, search,
# SAQ fine-tuning of the chosen bits from the FP32 weights) and the same pipeline with the `uniform` and `random`
# searches in its place, for each seed; docs/results_fashion_mnist_samq.md gets the fine-tuned test top-1 and the
# MBOPs of each. Runs already finished are kept, so an interrupted sweep resumes.
# usage: tools/experiments/fashion_mnist_samq.sh [OUT_DIR [SEED...]]   (default seeds 1 2 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(realpath -m "${1:-runs/experiments/fashion_mnist_samq}")
[ $# -gt 1 ] && seeds=("${@:2}") || seeds=(1 2 3)
host=build/saqhost
pipeline=configs/fashion_mnist_samq.toml
declare -A search=(
  [samq]=""  # the pipeline's own search table
  [uniform]='stage.1.search={use="uniform"}'
  [random]='stage.1.search={use="random", score_batches=20}'  # samq's derivation criterion
)
mkdir -p "$out" docs
for seed in "${seeds[@]}"; do
  for m in samq random uniform; do
    name="$m-s$seed"
    [ -f "$out/$name/summary.json" ] && continue
    rm -rf "${out:?}/$name"
    args=(--set run.out_dir="$out" --set run.name="$name" --set run.seed="$seed")
    [ -n "${search[$m]}" ] && args+=(--set "${search[$m]}")
    "$host" run "$pipeline" -q "${args[@]}"
    python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(sys.argv[2], s["test_top1"], s["bops"]["mbops"])' \
      "$out/$name/summary.json" "$name"
  done
done
python3 tools/experiments/summarize_samq.py "$out" "$(uname -m), $(nproc) cores, $(date -u +%F)" "${seeds[*]}" \
  > docs/results_fashion_mnist_samq.md
cat docs/results_fashion_mnist_samq.md
