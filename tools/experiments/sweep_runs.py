"""What the sweep summaries share: the command line, the finished runs of an output folder, a mean ± std cell."""
import json
import pathlib
import re
import statistics
import sys


def arguments():
    """OUT_DIR MACHINE SEEDS from the command line."""
    return pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]


def finished_runs(out, pattern):
    """(match of `pattern` on the run folder's name, summary.json, run folder) for each finished run, by name."""
    for summary in sorted(out.glob("*/summary.json")):
        m = re.fullmatch(pattern, summary.parent.name)
        if m:
            yield m, json.loads(summary.read_text()), summary.parent


def mean_std(values, digits=2):
    """"mean ± sample std" (the mean alone for one value)."""
    spread = f" ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else ""
    return f"{statistics.mean(values):.{digits}f}{spread}"
