#!/usr/bin/python3
# Builds tests/data/oracles/qsam_step.pth from the official SAQ code (zhuang-group/SAQ at commit 594e9c7:
# utils/qsam.py, utils/qasam.py, models/LIQ_wn_qsam.py, quan_models/LIQ.py, quan_models/common.py), run by hand, not
# by CI: the five files are copied from a checkout given on the command line into a temporary package tree and
# imported from there; nothing of them enters this repository.
#
# The case, where the reference is numerically stable (double precision, one quantized input): QLinear 4 → 3
# (4-bit weights, 32-bit input) → sigmoid (positive, so that the unsigned 4-bit input keeps a gradient) → QLinear
# 3 → 2 (4-bit weights, 4-bit input), biases, 6 samples, mean
# cross-entropy; clips initialised by the layers' own first forward (0.8·max|·|); SGD lr 0.1, momentum 0.9 over every
# parameter; one step of the official training loop (c_engine.py: forward, backward, ascent_step,
# set_second_forward, forward, backward, descent_step). Two steps are saved:
#   qsam.*   QSAM, ρ = 0.2, include_aclip = True (the activation clip is perturbed), include_wclip = False
#   qasam.*  QASAM, ρ = 0.5, η = 0 (the official numerator is X²·g, saqhost's (|X| + η)²·g: equal at η = 0)
# Each: the weights before (after the clip initialisation), the batch, every parameter after the step.
# usage: tools/oracles/make_qsam_fixture.py PATH/TO/SAQ [OUT]
import importlib
import os
import shutil
import sys
import tempfile

import torch

repo = sys.argv[1]
out = sys.argv[2] if len(sys.argv) > 2 else "tests/data/oracles/qsam_step.pth"
files = ["utils/qsam.py", "utils/qasam.py", "models/LIQ_wn_qsam.py", "quan_models/LIQ.py", "quan_models/common.py"]
tmp = tempfile.mkdtemp()
try:
    for f in files:
        os.makedirs(os.path.join(tmp, os.path.dirname(f)), exist_ok=True)
        shutil.copy(os.path.join(repo, f), os.path.join(tmp, f))
    for pkg in ["utils", "models", "quan_models"]:
        open(os.path.join(tmp, pkg, "__init__.py"), "w").close()
    sys.path.insert(0, tmp)
    qsam = importlib.import_module("utils.qsam")
    qasam = importlib.import_module("utils.qasam")
    layers = importlib.import_module("models.LIQ_wn_qsam")
finally:
    shutil.rmtree(tmp)


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = layers.QLinear(4, 3, bits_weights=4, bits_activations=32)
        self.fc2 = layers.QLinear(3, 2, bits_weights=4, bits_activations=4)

    def forward(self, x):
        return self.fc2(torch.sigmoid(self.fc1(x)))


def one_step(prefix, make_minimizer, fixture):
    torch.manual_seed(0)
    model = Net().double()
    x = torch.randn(6, 4, dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0, 1, 0])
    criterion = torch.nn.CrossEntropyLoss()
    base = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    minimizer = make_minimizer(base, model)
    with torch.no_grad():
        model(x)  # the layers initialise their clips on their first forward (init_state)
    fixture[f"{prefix}.x"] = x
    fixture[f"{prefix}.y"] = y.to(torch.int64)
    for k, v in model.state_dict().items():
        fixture[f"{prefix}.before.{k}"] = v.detach().clone()
    # c_engine.py's step
    base.zero_grad()
    criterion(model(x), y).backward()
    minimizer.ascent_step()
    for m in model.modules():
        if isinstance(m, layers.QLinear):
            m.set_second_forward()
    criterion(model(x), y).backward()
    minimizer.descent_step()
    for m in model.modules():
        if isinstance(m, layers.QLinear):
            m.set_first_forward()
    for k, v in model.state_dict().items():
        fixture[f"{prefix}.after.{k}"] = v.detach().clone()


fixture = {}
one_step("qsam", lambda base, model: qsam.QSAM(base, model, rho=0.2, include_aclip=True), fixture)
one_step("qasam", lambda base, model: qasam.QASAM(base, model, rho=0.5, eta=0.0, include_aclip=True), fixture)
torch.save(fixture, out)
print(f"{out}: {len(fixture)} tensors")
