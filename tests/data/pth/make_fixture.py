#!/usr/bin/python3
"""Writes small torch.save files and, beside each, the values the tests compare against.

Regenerate from the repository root:  /usr/bin/python3 tests/data/pth/make_fixture.py
- model.pth: the state_dict (an OrderedDict) of a small seeded Conv2d + BatchNorm2d + Linear model.
- wrapped.pth: what training scripts save: {"state_dict": <the same, each key prefixed "module." as
  DataParallel does>, "epoch": 7, "best_acc": 71.25, "optimizer": <an SGD state_dict with momentum buffers>}.
- dtypes.pth: a plain dict of tensors of every storage type read, a transposed view and a slice that share
  one storage (non-trivial strides and a storage offset), and an empty tensor.
- legacy.pth: the pre-1.6 (non-zip) format, which the reader refuses.
<name>.txt lists each tensor as: key dtype ndim size... then every element in row-major order (floats with
17 significant digits, bools as 0/1).
"""
import collections
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def model():
    torch.manual_seed(3)
    m = torch.nn.Sequential(collections.OrderedDict([
        ("conv", torch.nn.Conv2d(3, 4, 3, bias=False)),
        ("bn", torch.nn.BatchNorm2d(4)),
        ("fc", torch.nn.Linear(4, 5))]))
    m.bn.running_mean.uniform_(-1, 1)
    m.bn.running_var.uniform_(0.5, 2)
    m.bn.num_batches_tracked.fill_(12)
    return m


def write_values(name, tensors):
    with open(os.path.join(HERE, name + ".txt"), "w") as f:
        for key, t in tensors.items():
            flat = t.detach().reshape(-1)
            if t.dtype == torch.bool:
                values = [str(int(v)) for v in flat.tolist()]
            elif t.is_floating_point():
                values = ["%.17g" % v for v in flat.double().tolist()]
            else:
                values = [str(v) for v in flat.tolist()]
            dtype = str(t.dtype).replace("torch.", "")
            f.write(" ".join([key, dtype, str(t.dim())] + [str(s) for s in t.shape] + values) + "\n")


def main():
    m = model()
    sd = m.state_dict()
    torch.save(sd, os.path.join(HERE, "model.pth"))
    write_values("model", sd)

    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    sum((p * p).sum() for p in m.parameters()).backward()
    opt.step()
    wrapped = collections.OrderedDict(("module." + k, v) for k, v in model().state_dict().items())
    torch.save({"state_dict": wrapped, "epoch": 7, "best_acc": 71.25, "optimizer": opt.state_dict()},
               os.path.join(HERE, "wrapped.pth"))

    base = torch.arange(12, dtype=torch.float32).reshape(3, 4) / 8
    dtypes = {
        "float": torch.tensor([0.1, -2.5, 3e-8], dtype=torch.float32),
        "double": torch.tensor([[1.0 / 3, -1e300]], dtype=torch.float64),
        "half": torch.tensor([0.5, -65504.0, 0.0999755859375], dtype=torch.float16),
        "long": torch.tensor([-(2 ** 62), 5], dtype=torch.int64),
        "int": torch.tensor([[2 ** 31 - 1], [-7]], dtype=torch.int32),
        "bool": torch.tensor([True, False, True]),
        "uint8": torch.tensor([0, 200, 255], dtype=torch.uint8),
        "base": base,
        "transposed": base.t(),
        "row": base[1, 1:],
        "empty": torch.zeros(0, 3),
    }
    torch.save(dtypes, os.path.join(HERE, "dtypes.pth"))
    write_values("dtypes", dtypes)

    torch.save({"w": torch.ones(2)}, os.path.join(HERE, "legacy.pth"), _use_new_zipfile_serialization=False)


if __name__ == "__main__":
    main()
