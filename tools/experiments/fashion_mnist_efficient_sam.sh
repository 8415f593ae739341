#!/usr/bin/env bash
# Cheaper sharpness-aware quantization on Fashion-MNIST: QAT, SAQ (sam) and the methods that cut SAM's cost —
# ESAM, LookSAM, GSAM, MSAM — each on the quantized weights (perturb = "quantized"), at W4A4 and W2A2, for each seed.
# Every quantized run starts from the FP32 model of its seed (the SAQ ablation's pipelines, same ρ = 0.4, 2 epochs).
# docs/results_efficient_sam.md gets test top-1 mean ± std and wall time per run; docs/efficient_sam.svg plots one
# against the other. Runs already finished are kept, so an interrupted sweep resumes.
# usage: tools/experiments/fashion_mnist_efficient_sam.sh [OUT_DIR [SEED...]]  (default seeds 1 2 3: ~40 min, 2 cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(realpath -m "${1:-runs/experiments/fashion_mnist_efficient_sam}")
[ $# -gt 1 ] && seeds=("${@:2}") || seeds=(1 2 3)
host=build/saqhost
here=tools/experiments
methods=(qat saq esam looksam gsam msam)
declare -A flags=(
  [qat]="--set optimizer.rho=0"   # one pass: the base SGD step alone
  [saq]=""
  [esam]="--set optimizer.use=esam --set optimizer.beta=0.5 --set optimizer.gamma=0.5"
  [looksam]="--set optimizer.use=looksam --set optimizer.k=5"
  [gsam]="--set optimizer.use=gsam"
  [msam]="--set optimizer.use=msam"
)
# shellcheck source=sweep.sh
source "$here/sweep.sh"
mkdir -p "$out" docs
for seed in "${seeds[@]}"; do
  run "fp32-s$seed" "$here/fashion_mnist_fp32.toml" --set run.seed="$seed"
  for bits in 4 2; do
    for m in "${methods[@]}"; do
      # shellcheck disable=SC2086
      run "$m-w${bits}a${bits}-s$seed" "$here/fashion_mnist_saq.toml" --set run.seed="$seed" \
        --set quantizer.weight_bits="$bits" --set quantizer.activation_bits="$bits" \
        --set stage.0.init="$out/fp32-s$seed/checkpoints/final.pt" ${flags[$m]}
    done
  done
done
python3 "$here/summarize_efficient_sam.py" "$out" "$(uname -m), $(nproc) cores, $(date -u +%F)" "${seeds[*]}" \
  docs/efficient_sam.svg > docs/results_efficient_sam.md
cat docs/results_efficient_sam.md
