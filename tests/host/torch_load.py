# Opens a file as a PyTorch user would, torch.load(path, weights_only=True) (the loader that refuses anything
# but tensors and plain data), and writes what it holds, flattened to dotted names, to OUT with torch.save:
# tensors as they are, ints/floats/bools as 0-d tensors of int64/float64/bool, strings to stdout as name=value.
# The C++ test compares OUT with what saqhost saved. usage: torch_load.py FILE OUT
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


state = torch.load(sys.argv[1], weights_only=True)
tensors = {}
flatten("", state, tensors)
torch.save(tensors, sys.argv[2])
print(f"tensors={len(tensors)}")
