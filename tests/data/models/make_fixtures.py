#!/usr/bin/python3
"""Writes the reference files the model tests compare against, from torchvision 0.14 (Debian's python3-torchvision,
needed only to regenerate them) and a transcription of kuangliu's pytorch-cifar MobileNetV2 (the SAQ paper's CIFAR
model):

  <model>.keys  one line per state_dict entry, in state_dict order: "name shape" (shape "1x2x3", "-" for a scalar)
  <model>.macs  one line per Conv2d / Linear in forward order (module order, for these models): "name macs" for
                one sample (conv: k²·(C_in/groups)·C_out·H_out·W_out; linear: C_in·C_out), from forward hooks on a
                224×224 (ImageNet models) or 32×32 (CIFAR) input; 1000 classes (ImageNet) or 100 (CIFAR)

Regenerate (from this folder):  /usr/bin/python3 make_fixtures.py
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


class CifarBlock(nn.Module):
    """kuangliu/pytorch-cifar models/mobilenetv2.py Block: expand + depthwise + pointwise."""

    def __init__(self, in_planes, out_planes, expansion, stride):
        super().__init__()
        self.stride = stride
        planes = expansion * in_planes
        self.conv1 = nn.Conv2d(in_planes, planes, 1, 1, 0, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, groups=planes, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, 1, 1, 0, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = nn.Sequential()
        if stride == 1 and in_planes != out_planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, out_planes, 1, 1, 0, bias=False),
                                          nn.BatchNorm2d(out_planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return out + self.shortcut(x) if self.stride == 1 else out


class CifarMobileNetV2(nn.Module):
    cfg = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

    def __init__(self, num_classes=100):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        layers, in_planes = [], 32
        for expansion, out_planes, num_blocks, stride in self.cfg:
            for s in [stride] + [1] * (num_blocks - 1):
                layers.append(CifarBlock(in_planes, out_planes, expansion, s))
                in_planes = out_planes
        self.layers = nn.Sequential(*layers)
        self.conv2 = nn.Conv2d(320, 1280, 1, 1, 0, bias=False)
        self.bn2 = nn.BatchNorm2d(1280)
        self.linear = nn.Linear(1280, num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layers(out)
        out = F.relu(self.bn2(self.conv2(out)))
        out = F.avg_pool2d(out, 4)
        return self.linear(out.view(out.size(0), -1))


def write(name, model, size):
    with open(name + ".keys", "w") as f:
        for key, t in model.state_dict().items():
            f.write(f"{key} {'x'.join(map(str, t.shape)) or '-'}\n")
    macs = []

    def hook(mod, inp, out, name):
        if isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1]
            macs.append((name, k * mod.in_channels // mod.groups * mod.out_channels * out.shape[2] * out.shape[3]))
        else:
            macs.append((name, mod.in_features * mod.out_features))

    for n, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.register_forward_hook(lambda mod, i, o, n=n: hook(mod, i, o, n))
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    with open(name + ".macs", "w") as f:
        for n, v in macs:
            f.write(f"{n} {v}\n")


if __name__ == "__main__":
    for name in ["resnet18", "resnet34", "resnet50"]:
        write(name, getattr(torchvision.models, name)(), 224)
    write("mobilenetv2", torchvision.models.mobilenet_v2(), 224)
    write("mobilenetv2_cifar", CifarMobileNetV2(100), 32)
