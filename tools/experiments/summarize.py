#!/usr/bin/env python3
"""Tables the SAQ ablation's runs: test top-1 (mean ± sample std over seeds) per method and bit-width.
usage: summarize.py OUT_DIR MACHINE SEEDS"""
import statistics

from sweep_runs import arguments, finished_runs, mean_std

out, machine, seeds = arguments()
names = {
    "fp32": "FP32 (the starting point)",
    "qat_sgd": "QAT, SGD (ρ = 0)",
    "saq_sam": "SAQ: SAM on quantized weights",
    "sam_latent": "SAM on latent weights (the paper's case 2)",
    "qasam": "QASAM: ASAM on quantized weights",
    "esam_saq": "ESAM-SAQ (β = γ = 0.5)",
}
results = {}
for m, s, _ in finished_runs(out, r"(.+?)(?:-(w\d+a\d+))?-s(\d+)"):
    results.setdefault((m.group(1), m.group(2) or "fp32"), []).append((s["test_top1"], s.get("seconds", 0)))


def cell(values):
    return f"{mean_std([v[0] for v in values])} (n={len(values)})"


print("# SAQ ablation on Fashion-MNIST\n")
print(f"Test top-1 (%) of a small CNN (width 16), mean ± std over seeds {seeds}; measured on {machine}.")
print("Every quantized run starts from the FP32 model of its seed and trains 2 epochs with the paper's quantizer")
print("(liq_wn; first layer w8a32, last w8a8), ρ = 0.4, SGD lr 0.01 (cosine), clip lr 0.01.\n")
print("Command: `tools/experiments/fashion_mnist_saq.sh` (pipelines in tools/experiments/).\n")
print("| method | W4A4 | W2A2 |")
print("|---|---:|---:|")
fp = results.get(("fp32", "fp32"))
if fp:
    print(f"| {names['fp32']} | {cell(fp)} | {cell(fp)} |")
for key in ["qat_sgd", "saq_sam", "sam_latent", "qasam", "esam_saq"]:
    row = [cell(results[(key, b)]) if (key, b) in results else "–" for b in ("w4a4", "w2a2")]
    print(f"| {names[key]} | {row[0]} | {row[1]} |")
secs = {k: statistics.mean(v[1] for v in vals) for k, vals in results.items()}
print("\nMean wall time per run (s): " + ", ".join(f"{k[0]} {k[1]}: {v:.0f}" for k, v in sorted(secs.items())))
