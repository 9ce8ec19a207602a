"""ResNet-18 for CIFAR, one of the three CIFAR networks of hard_threshold §5 ("Rethinking gradient
sparsification as total error minimization"; Table 1: d = 11,173,962).

The paper's code (sands-lab/rethinking-sparsification) takes its CIFAR networks from the widely
used kuangliu/pytorch-cifar; this is our own code for that CIFAR form: a 3x3 stem conv 3 -> 64
(stride 1, no bias) + BatchNorm + ReLU and *no* max-pool, four stages of two BasicBlocks
(64, 128, 256, 512 channels; stride 1, 2, 2, 2), each block conv 3x3 + BN + ReLU, conv 3x3 + BN,
plus a shortcut (identity, or 1x1 conv + BN where the shape changes), then ReLU; average pool 4
(4x4 -> 1x1) and linear 512 -> ``num_classes``. Convolutions carry no bias.

Parameters: 11,173,962 for 10 classes (11,220,132 for 100). Input: float N x 3 x 32 x 32;
output: logits N x ``num_classes``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18CIFAR(nn.Module):
    """The CIFAR ResNet-18 skeleton: a 3x3 stem, four stages of two ``block``s, average pool, linear."""

    block: type[nn.Module] = BasicBlock

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        stages, c_in = [], 64
        for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stages.append(nn.Sequential(self.block(c_in, c_out, stride), self.block(c_out, c_out, 1)))
            c_in = c_out
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.linear = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.avg_pool2d(out, 4)
        return self.linear(out.flatten(1))


IMPLEMENTATION = ResNet18CIFAR
