#!/usr/bin/env python3
"""Tables the efficient-SAM sweep (fashion_mnist_efficient_sam.sh): test top-1 mean ± sample std over the seeds and
mean wall time per run, for each method and bit-width, and writes an SVG of top-1 against wall time.
usage: summarize_efficient_sam.py OUT_DIR MACHINE SEEDS SVG_PATH   (the Markdown goes to stdout)"""
import statistics
import sys

from sweep_runs import arguments, finished_runs, mean_std

out, machine, seeds = arguments()
svg_path = sys.argv[4]
methods = {
    "qat": "QAT (SGD alone)",
    "saq": "SAQ (SAM on the quantized weights)",
    "esam": "ESAM-SAQ (β = γ = 0.5)",
    "looksam": "LookSAM-SAQ (k = 5, α = 0.7)",
    "gsam": "GSAM-SAQ (ρ_min = 0.02, α = 0.01)",
    "msam": "MSAM-SAQ (ρ along SGD's momentum)",
}
bit_widths = ["w4a4", "w2a2"]
runs = {}
for m, s, _ in finished_runs(out, r"(.+?)-(w\d+a\d+)-s(\d+)"):
    runs.setdefault((m.group(1), m.group(2)), []).append((s["test_top1"], s["seconds"]))


def top1(key):
    return [v[0] for v in runs[key]]


def seconds(key):
    return statistics.mean(v[1] for v in runs[key])


print("# Cheaper sharpness-aware quantization on Fashion-MNIST\n")
print(f"Test top-1 (%) of a small CNN (width 16), mean ± std over seeds {seeds}, and mean wall time per run;")
print(f"measured on {machine}. Every quantized run starts from the FP32 model of its seed and trains 2 epochs")
print("with the paper's quantizer (liq_wn; first layer w8a32, last w8a8), ρ = 0.4 on the quantized weights,")
print("SGD lr 0.01 (cosine) as the base optimizer, clip lr 0.01.\n")
print("Command: `tools/experiments/fashion_mnist_efficient_sam.sh` (pipelines in tools/experiments/).\n")
print("| method | W4A4 top-1 | W4A4 s/run | W2A2 top-1 | W2A2 s/run |")
print("|---|---:|---:|---:|---:|")
for key, label in methods.items():
    cells = []
    for b in bit_widths:
        if (key, b) in runs:
            cells += [f"{mean_std(top1((key, b)))} (n={len(runs[(key, b)])})", f"{seconds((key, b)):.0f}"]
        else:
            cells += ["–", "–"]
    print(f"| {label} | " + " | ".join(cells) + " |")
print("\nWall time includes each run's start-up and its test evaluations; cost relative to QAT per training step is")
print("what `build/tools/bench_train` measures (README, Benchmarks).\n")
print("![top-1 against wall time](efficient_sam.svg)")

# The plot: one marker per method and bit-width at (mean seconds, mean top-1), a bar of ± one std.
W, H, L, R, T, B = 760, 440, 70, 200, 30, 50
points = [(k, b, seconds((k, b)), statistics.mean(top1((k, b))),
           statistics.stdev(top1((k, b))) if len(runs[(k, b)]) > 1 else 0.0)
          for k in methods for b in bit_widths if (k, b) in runs]
if points:
    xs = [p[2] for p in points]
    ys = [p[3] + s * p[4] for p in points for s in (-1, 1)]
    x0, x1 = 0.0, max(xs) * 1.1
    y0, y1 = min(ys) - 0.5, max(ys) + 0.5
    sx = lambda x: L + (x - x0) / (x1 - x0) * (W - L - R)
    sy = lambda y: H - B - (y - y0) / (y1 - y0) * (H - T - B)
    colours = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02"]
    colour = {k: colours[i % len(colours)] for i, k in enumerate(methods)}
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="black"/>',
           f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="black"/>',
           f'<text x="{(L + W - R) / 2}" y="{H - 12}" text-anchor="middle">wall time per run (s)</text>',
           f'<text x="16" y="{(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 16 {(T + H - B) / 2})">'
           'test top-1 (%)</text>']
    for i in range(6):
        x = x0 + (x1 - x0) * i / 5
        y = y0 + (y1 - y0) * i / 5
        svg += [f'<text x="{sx(x):.1f}" y="{H - B + 16}" text-anchor="middle">{x:.0f}</text>',
                f'<text x="{L - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:.1f}</text>',
                f'<line x1="{L}" y1="{sy(y):.1f}" x2="{W - R}" y2="{sy(y):.1f}" stroke="#ddd"/>']
    for k, b, x, y, s in points:
        c = colour[k]
        svg.append(f'<line x1="{sx(x):.1f}" y1="{sy(y - s):.1f}" x2="{sx(x):.1f}" y2="{sy(y + s):.1f}" stroke="{c}"/>')
        if b == "w4a4":
            svg.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="5" fill="{c}"/>')
        else:
            svg.append(f'<rect x="{sx(x) - 5:.1f}" y="{sy(y) - 5:.1f}" width="10" height="10" fill="none" '
                       f'stroke="{c}" stroke-width="2"/>')
    ly = T + 10
    for k in methods:
        svg += [f'<circle cx="{W - R + 20}" cy="{ly}" r="5" fill="{colour[k]}"/>',
                f'<text x="{W - R + 32}" y="{ly + 4}">{k}</text>']
        ly += 20
    svg += [f'<circle cx="{W - R + 20}" cy="{ly + 10}" r="5" fill="#888"/>',
            f'<text x="{W - R + 32}" y="{ly + 14}">W4A4</text>',
            f'<rect x="{W - R + 15}" y="{ly + 25}" width="10" height="10" fill="none" stroke="#888" stroke-width="2"/>',
            f'<text x="{W - R + 32}" y="{ly + 34}">W2A2</text>', '</svg>']
    with open(svg_path, "w") as f:
        f.write("\n".join(svg) + "\n")
