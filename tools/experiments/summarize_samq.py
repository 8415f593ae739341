#!/usr/bin/env python3
"""Tables the mixed-precision sweep: per search, the fine-tuned test top-1 and the model's MBOPs (mean ± sample
std over seeds), how many runs landed inside the BOPs window, and the bits chosen.
usage: summarize_samq.py OUT_DIR MACHINE SEEDS"""
import itertools
import json
import pathlib
import re
import statistics

from sweep_runs import arguments, finished_runs, mean_std

out, machine, seeds = arguments()
names = {
    "samq": "`samq`: LSTM generator, REINFORCE on L(Q(w)+ε) + λ·(MBOPs − target)²",
    "random": "`random`: least sharp of 20 random configurations in the window",
    "uniform": "`uniform`: largest uniform bit-width under the target",
}
runs = {}
for m, s, run in finished_runs(out, r"(.+?)-s(\d+)"):
    fp32, trajectory = None, []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec.get("stage") == 0 and rec.get("split") == "test":
            fp32 = rec["top1"]
        if rec.get("split") == "search_epoch" and "mbops" in rec:
            trajectory.append(rec["mbops"])
    bits = " ".join(f"{w}" if w == a else f"{w}/{a}" for w, a in list(s["bops"]["layer_bits"].values())[1:-1])
    runs.setdefault(m.group(1), []).append(
        {"top1": s["test_top1"], "mbops": s["bops"]["mbops"], "bits": bits,
         "seed": m.group(2), "fp32": fp32, "trajectory": trajectory})


pipeline = pathlib.Path("configs/fashion_mnist_samq.toml").read_text()
target = float(re.search(r"target_mbops = ([\d.]+)", pipeline).group(1))
window = float(re.search(r"window_mbops = ([\d.]+)", pipeline).group(1))
print("# Mixed precision on Fashion-MNIST: SAMQ against the uniform and random baselines\n")
print(f"Small CNN (width 32), bits {{2, 3, 4, 5}} per searched layer (first layer w8a32, last w8a8), target "
      f"{target:g} MBOPs, window [{target - window:g}, {target:g}]; seeds {seeds}; measured on {machine}.")
print("Each run is `configs/fashion_mnist_samq.toml` end to end: FP32 training, the search, then SAQ fine-tuning "
      "of the chosen bits from the FP32 weights (ρ = 0.4), so the three searches differ in the bits only.\n")
print("Command: `tools/experiments/fashion_mnist_samq.sh`.\n")
print("| search | test top-1 (%) | MBOPs | in the window |")
print("|---|---:|---:|---:|")
for key in ["samq", "random", "uniform"]:
    if key not in runs:
        continue
    r = runs[key]
    inside = sum(target - window - 1e-9 <= v["mbops"] <= target + 1e-9 for v in r)
    print(f"| {names[key]} | {mean_std([v['top1'] for v in r])} (n={len(r)}) | {mean_std([v['mbops'] for v in r], 1)} | "
          f"{inside}/{len(r)} |")
fp32 = {v["seed"]: v["fp32"] for r in runs.values() for v in r if v["fp32"] is not None}
if fp32:
    print(f"| FP32 (stage 0, the fine-tuning's starting point) | {mean_std(list(fp32.values()))} (n={len(fp32)}) | – | – |")
print("\n`uniform` takes the largest uniform width under the target and so lies below the window by design.")

# The size of the search space, from any run's report.md: MACs per layer, the first and last layers fixed.
report = next(out.glob("*/report.md"), None)
if report:
    rows = [line.split("|")[1:-1] for line in report.read_text().splitlines() if line.startswith("| ") and "MACs" not in line]
    macs = [int(r[5]) for r in rows]
    fixed = sum(mac * int(r[3]) * int(r[4].split()[-1].strip(")") if "counted" in r[4] else r[4])
                for mac, r in zip(macs, rows) if r is rows[0] or r is rows[-1]) / 1e6
    space = list(itertools.product([2, 3, 4, 5], repeat=len(rows) - 2))
    inside = [c for c in space if target - window <= fixed + sum(m * b * b for m, b in zip(macs[1:-1], c)) / 1e6 <= target]
    print(f"The search space: {len(rows) - 2} searched layers × 4 widths = {len(space)} configurations, "
          f"{len(inside)} of them in the window ({', '.join(' '.join(map(str, c)) for c in inside)}).")

trajectories = [v for v in runs.get("samq", []) if v["trajectory"]]
if trajectories:
    print("\nsamq's generator, mean MBOPs of the configurations it sampled per generator epoch:\n")
    for v in trajectories:
        print(f"- seed {v['seed']}: " + " → ".join(f"{x:.1f}" for x in v["trajectory"]))
print("\nBits chosen per searched layer (conv2 conv3 conv4 …):\n")
for key in ["samq", "random", "uniform"]:
    for v in runs.get(key, []):
        print(f"- {key}, seed {v['seed']}: {v['bits']} ({v['mbops']:.1f} MBOPs, {v['top1']:.2f} %)")
