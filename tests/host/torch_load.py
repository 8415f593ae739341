# Opens a file as a PyTorch user would, torch.load(path, weights_only=True) (the loader that refuses anything
# but tensors and plain data), and writes what it holds, flattened to dotted names, to OUT with torch.save:
# tensors as they are, ints/floats/bools as 0-d tensors of int64/float64/bool, strings to stdout as name=value.
# The C++ test compares OUT with what saqhost saved. Several pairs in one call (importing torch takes ~1 s), each
# file's lines after a "== FILE" line. usage: torch_load.py FILE OUT [FILE OUT]...
import sys

import torch


def flatten(prefix, value, tensors):
    if isinstance(value, dict):
        for key, item in value.items():
            flatten(f"{prefix}{key}.", item, tensors)
    elif isinstance(value, torch.Tensor):
        tensors[prefix[:-1]] = value
    elif isinstance(value, bool):
        tensors[prefix[:-1]] = torch.tensor(value)
    elif isinstance(value, int):
        tensors[prefix[:-1]] = torch.tensor(value, dtype=torch.int64)
    elif isinstance(value, float):
        tensors[prefix[:-1]] = torch.tensor(value, dtype=torch.float64)
    elif isinstance(value, str):
        print(f"{prefix[:-1]}={value}")
    else:
        raise SystemExit(f"{prefix[:-1]}: unexpected {type(value).__name__}")


if len(sys.argv) < 3 or len(sys.argv) % 2 != 1:
    raise SystemExit("usage: torch_load.py FILE OUT [FILE OUT]...")
for source, out in zip(sys.argv[1::2], sys.argv[2::2]):
    print(f"== {source}")
    state = torch.load(source, weights_only=True)
    tensors = {}
    flatten("", state, tensors)
    torch.save(tensors, out)
    print(f"tensors={len(tensors)}")
