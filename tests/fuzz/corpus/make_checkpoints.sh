#!/usr/bin/env bash
# Regenerates the checkpoint seeds of fuzz_checkpoint (corpus/checkpoint) and fuzz_resume (corpus/resume): real
# files of each kind saqhost writes — a stage checkpoint, a .pth state_dict, a resume checkpoint holding SGD
# momentum, a samq search state with its Adam state — from a tiny synthetic run (small_cnn width 2).
# usage: tests/fuzz/corpus/make_checkpoints.sh [build/saqhost]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
saqhost=${1:-$here/../../../build/saqhost}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/p.toml" <<TOML
[run]
name = "c"
out_dir = "$work/runs"
tensorboard = false
checkpoint_every = 1
[data]
use = "synthetic"
size = 8
train_samples = 64
test_samples = 8
batch_size = 8
eval_batch_size = 8
[model]
use = "small_cnn"
width = 2
[quantizer]
use = "liq_wn"
[optimizer]
use = "sam"
base = { use = "sgd", lr = 0.05, momentum = 0.9 }
[[stage]]
use = "train"
epochs = 1
quantized = false
limit_batches = 2
optimizer = { use = "sgd", lr = 0.05, momentum = 0.9 }
[[stage]]
use = "search"
init = "stage0"
target_mbops = 0.2
window_mbops = 0.2
epochs = 2
limit_batches = 2
search = { use = "samq", hidden = 4, bit_warmup_epochs = 1, derive_samples = 2, score_batches = 1 }
TOML
"$saqhost" run "$work/p.toml" -q
cp "$work/runs/c/checkpoints/stage0.pt" "$here/checkpoint/stage.pt"
cp "$work/runs/c/checkpoints/stage0.pth" "$here/checkpoint/state_dict.pth"
cp "$work/runs/c/search/state.pt" "$here/checkpoint/search_state.pt"
SAQ_FAULT_AFTER_STEP=1 "$saqhost" run "$work/p.toml" -q --set run.name=k || true  # killed after step 1
cp "$work/runs/k/checkpoints/resume.pt" "$here/checkpoint/resume.pt"
cp "$work/runs/k/checkpoints/resume.pt" "$here/resume/resume.pt"
ls -l "$here/checkpoint" "$here/resume"
