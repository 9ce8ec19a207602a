"""Pre-activation ResNet-110 for CIFAR with bottleneck blocks, the DEF paper's second CIFAR network
(Xu & Huang, ICML 2022), in the form of the authors' code: github anxuthu/DEF, ``models/preresnet.py``,
``resnet110`` = ``PreResNet(depth=110)`` (checked at commit 892ed9c; itself ported from
bearpaw/pytorch-classification ``models/cifar/preresnet.py``). The architecture is He et al. 2016,
"Identity mappings in deep residual networks", CIFAR form: depth 110 >= 44 selects the bottleneck
block, (110 - 2) / 9 = 12 blocks per stage.

* Stem: conv 3x3, 3 -> 16 (no bias); no BN/ReLU of its own (the first block pre-activates it).
* Three stages of 12 pre-activation bottlenecks, planes 16, 32, 64 (expansion 4: outputs 64, 128,
  256), stride 1, 2, 2 in the first block of a stage. A block: BN + ReLU, conv 1x1 c_in -> planes,
  BN + ReLU, conv 3x3 planes -> planes (the stride), BN + ReLU, conv 1x1 planes -> 4 planes (convs
  without bias), plus the shortcut: the block's input, or where the shape changes a 1x1 conv
  (stride s, no bias, no BN) of the raw (not pre-activated) input.
* Head: BN + ReLU, average pool 8 (8x8 -> 1x1), linear 256 -> ``num_classes``.

Initialisation as in the authors' code: conv weights N(0, 2 / (k * k * out_channels)); BatchNorm
weight 1, bias 0; the linear layer PyTorch's default.

Parameters: 1,146,842 for 10 classes (1,169,972 for 100), the same tensors in the same order as
the authors' ``resnet110`` (and the same initial values under the same seed). This is NOT the
"1.7M" usually quoted for ResNet-110: that is the basic-block ResNet-110 (54 basic blocks, He et
al. 2015, 1.73M) or the bottleneck pre-act ResNet-164 (1.70M); DEF's ``depth >= 44 -> Bottleneck``
rule makes its ResNet-110 a 12-bottleneck-per-stage net with 1.15M. Input: float N x 3 x 32 x 32;
output: logits N x ``num_classes``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

DEPTH = 110
EXPANSION = 4


class PreActBottleneck(nn.Module):
    def __init__(self, c_in: int, planes: int, stride: int = 1):
        super().__init__()
        c_out = planes * EXPANSION
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, planes, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, c_out, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False) if stride != 1 or c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.relu(self.bn1(x)))
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        return out + (x if self.downsample is None else self.downsample(x))


class PreActResNet110CIFAR(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        n = (DEPTH - 2) // 9  # 12 bottlenecks per stage
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        stages, c_in = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = [PreActBottleneck(c_in, planes, stride)]
            c_in = planes * EXPANSION
            blocks += [PreActBottleneck(c_in, planes) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.bn = nn.BatchNorm2d(c_in)
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AvgPool2d(8)
        self.fc = nn.Linear(c_in, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        x = self.avgpool(self.relu(self.bn(x)))
        return self.fc(x.flatten(1))


IMPLEMENTATION = PreActResNet110CIFAR
