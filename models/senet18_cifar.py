"""SENet-18 for CIFAR, one of the three CIFAR networks of hard_threshold §5 ("Rethinking gradient
sparsification as total error minimization"; Table 1: d = 11,260,354).

The paper's code (sands-lab/rethinking-sparsification) takes its CIFAR networks from the widely
used kuangliu/pytorch-cifar (senet.py, ``SENet18``); this is our own code for that CIFAR form:
stem conv 3x3 3 -> 64 (no bias) + BN + ReLU, no max-pool, four stages of two pre-activation
blocks (64, 128, 256, 512 channels; stride 1, 2, 2, 2), average pool 4 and linear
512 -> ``num_classes``. A block: BN + ReLU, conv 3x3 (stride s), BN + ReLU, conv 3x3 (convs
without bias); squeeze-and-excitation on the result (global average pool, 1x1 conv
planes -> planes/16 + ReLU, 1x1 conv -> planes + sigmoid, both with bias; channel-wise scale);
plus the shortcut: the block's input, or where the shape changes a 1x1 conv (stride s, no bias,
no BN) applied to the pre-activated input.

Parameters: 11,260,354 for 10 classes (11,306,524 for 100). Input: float N x 3 x 32 x 32;
output: logits N x ``num_classes``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from compress_train.models.resnet18_cifar import ResNet18CIFAR


class PreActSEBlock(nn.Module):
    def __init__(self, c_in: int, planes: int, stride: int = 1, reduction: int = 16):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.shortcut = None
        if stride != 1 or c_in != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, planes, 1, stride=stride, bias=False))
        self.fc1 = nn.Conv2d(planes, planes // reduction, 1)  # squeeze-and-excitation
        self.fc2 = nn.Conv2d(planes // reduction, planes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        w = F.adaptive_avg_pool2d(out, 1)
        w = torch.sigmoid(self.fc2(F.relu(self.fc1(w))))
        return out * w + shortcut


class SENet18CIFAR(ResNet18CIFAR):
    """ResNet-18's skeleton with pre-activation squeeze-and-excitation blocks."""

    block = PreActSEBlock


IMPLEMENTATION = SENet18CIFAR
