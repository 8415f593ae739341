#!/usr/bin/python3
# Builds tests/data/oracles/esam_step.pth from the official ESAM code (dydjw9/Efficient_SAM, utils/Esam.py at
# commit 1e06840), run by hand, not by CI: the official file is read from a checkout given on the command line
# and imported from a temporary folder; nothing of it enters this repository.
#
# The case: an MLP 4 → 3 (tanh) → 2 in float64 with fixed weights, 6 samples, per-sample cross-entropy; SGD
# (lr 0.1, momentum 0.9) under ESAM with ρ = 0.2, β = 0.5, γ = 1 (no data selection: the official selection keeps
# the samples strictly above the k-th rise, k − 1 of them, where saqhost keeps k by design). The official code
# draws the frozen tensors at the end of the previous step; here fc1.bias and fc2.weight are frozen by hand
# before the step, as such a draw would leave them. Saved: the weights before, the batch, the frozen set, the
# weights after one step.
# usage: tools/oracles/make_esam_fixture.py PATH/TO/Efficient_SAM [OUT]
import importlib.util
import shutil
import sys
import tempfile

import torch

repo = sys.argv[1]
out = sys.argv[2] if len(sys.argv) > 2 else "tests/data/oracles/esam_step.pth"
with tempfile.TemporaryDirectory() as tmp:
    shutil.copy(f"{repo}/utils/Esam.py", f"{tmp}/Esam.py")
    spec = importlib.util.spec_from_file_location("Esam", f"{tmp}/Esam.py")
    esam = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(esam)

torch.manual_seed(0)
model = torch.nn.Sequential()
model.add_module("fc1", torch.nn.Linear(4, 3))
model.add_module("tanh", torch.nn.Tanh())
model.add_module("fc2", torch.nn.Linear(3, 2))
model = model.double()
x = torch.randn(6, 4, dtype=torch.float64)
y = torch.tensor([0, 1, 1, 0, 1, 0])
before = {k: v.detach().clone() for k, v in model.state_dict().items()}

base = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
opt = esam.ESAM(model.parameters(), base, rho=0.2, beta=0.5, gamma=1.0)
frozen = ["fc1.bias", "fc2.weight"]
for name, p in model.named_parameters():
    if name in frozen:
        p.requires_grad = False
loss_fct = torch.nn.CrossEntropyLoss(reduction="none")
opt.paras = [x, y, loss_fct, model, lambda loss: loss.backward()]
opt.step()

fixture = {"x": x, "y": y.to(torch.int64)}
for k, v in before.items():
    fixture[f"before.{k}"] = v
for k, v in model.state_dict().items():
    fixture[f"after.{k}"] = v.detach().clone()
for name, _ in model.named_parameters():
    fixture[f"frozen.{name}"] = torch.tensor(name in frozen)
torch.save(fixture, out)
print(f"{out}: {len(fixture)} tensors")
