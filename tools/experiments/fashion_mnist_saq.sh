#!/usr/bin/env bash
# SAQ ablation on Fashion-MNIST: for each seed an FP32 small CNN is trained once, then each method trains the
# quantized model from those weights, at W4A4 and W2A2, and docs/results_fashion_mnist.md gets the test top-1,
# mean ± std over the seeds. Runs already finished are kept, so an interrupted sweep resumes.
# usage: tools/experiments/fashion_mnist_saq.sh [OUT_DIR [SEED...]]   (default seeds 1 2 3: about an hour on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(realpath -m "${1:-runs/experiments/fashion_mnist_saq}")
[ $# -gt 1 ] && seeds=("${@:2}") || seeds=(1 2 3)
host=build/saqhost
here=tools/experiments
methods=(qat_sgd saq_sam sam_latent qasam esam_saq)
declare -A flags=(
  [qat_sgd]="--set optimizer.rho=0"
  [saq_sam]=""
  [sam_latent]="--set optimizer.perturb=latent"
  [qasam]="--set optimizer.use=asam"
  [esam_saq]="--set optimizer.use=esam --set optimizer.beta=0.5 --set optimizer.gamma=0.5"
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
python3 "$here/summarize.py" "$out" "$(uname -m), $(nproc) cores, $(date -u +%F)" "${seeds[*]}" > docs/results_fashion_mnist.md
cat docs/results_fashion_mnist.md
