#!/usr/bin/env bash
# What data parallelism costs and gives on this machine, for the quick-start model (small_cnn width 32 on
# 1x28x28, 10 classes) and PreResNet-20's CIFAR shapes (3x32x32, 100 classes), both trained as the quick start's
# second stage (W4A4 liq_wn, SAM on the quantized weights) with a global batch of 128 on synthetic data:
# the step time of 1 process x 2 threads against 2 processes x 1 thread (64 per process), the collectives'
# time per step, the bytes they move per step and their rate on loopback, and their fraction of the step.
# All figures come from one run of each configuration (its second epoch, warm), read from metrics.jsonl.
# usage: tools/bench_data_parallel.sh [STEPS]    (default 30 steps per epoch; build/ must be built)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-30}
saqhost=${SAQHOST:-build/saqhost}
export SAQ_PLUGIN_PATH=${SAQ_PLUGIN_PATH:-build/plugins}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

pipeline() {  # model table, data shape keys, threads, per-process batch
  cat <<TOML
[run]
name = "b"
threads = $3
tensorboard = false
checkpoint_every = 0
[data]
use = "synthetic"
$2
train_samples = 8192
test_samples = 128
batch_size = $4
[model]
$1
[quantizer]
use = "liq_wn"
weight_bits = 4
activation_bits = 4
[optimizer]
use = "sam"
rho = 0.4
base = { use = "sgd", lr = 0.01, momentum = 0.9, nesterov = true, weight_decay = 5e-4 }
[[stage]]
use = "train"
epochs = 2
limit_batches = $steps
eval_every = 0
TOML
}

measure() {  # name, model table, data keys
  pipeline "$2" "$3" 2 128 > "$work/$1-1x2.toml"
  pipeline "$2" "$3" 1 64 > "$work/$1-2x1.toml"
  "$saqhost" run "$work/$1-1x2.toml" -q --set run.out_dir="$work/$1-1x2" > /dev/null
  "$saqhost" run "$work/$1-2x1.toml" -q --nproc 2 --set run.out_dir="$work/$1-2x1" > /dev/null
  python3 - "$1" "$work/$1-1x2/b/metrics.jsonl" "$work/$1-2x1/b/metrics.jsonl" <<'PY'
import json, sys
name, single, parallel = sys.argv[1:]
def line(path, split):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    return [r for r in rows if r["split"] == split and r["epoch"] == 2][-1]
one, two, comm = line(single, "train"), line(parallel, "train"), line(parallel, "comm")
print(f"{name}: step 1 process x 2 threads {one['step_ms']:.1f} ms, 2 processes x 1 thread {two['step_ms']:.1f} ms "
      f"(ratio 2x1 / 1x2 = {two['step_ms'] / one['step_ms']:.2f}); collectives {comm['comm_ms_per_step']:.2f} ms "
      f"per step, {comm['comm_bytes_per_step'] / 1e6:.2f} MB per step at {comm['comm_bytes_per_s'] / 1e6:.0f} MB/s, "
      f"{100 * comm['comm_fraction']:.1f}% of the step")
PY
}

measure quickstart 'use = "small_cnn"
width = 32' 'size = 28
channels = 1
classes = 10'
measure preresnet20 'use = "preresnet20"' 'size = 32
channels = 3
classes = 100'
