"""GoogLeNet for CIFAR, one of the three CIFAR networks of hard_threshold §5 ("Rethinking gradient
sparsification as total error minimization"; Table 1: d = 6,166,250).

The paper's code (sands-lab/rethinking-sparsification) takes its CIFAR networks from the widely
used kuangliu/pytorch-cifar; this is our own code for that CIFAR form: pre-layers conv 3x3
3 -> 192 + BN + ReLU (32x32 kept), Inception a3, b3, max-pool 3/2 (-> 16x16), a4 .. e4,
max-pool 3/2 (-> 8x8), a5, b5, average pool 8 and linear 1024 -> ``num_classes``. Each Inception
has four branches concatenated: 1x1; 1x1 -> 3x3; 1x1 -> 3x3 -> 3x3 (the "5x5" branch as two 3x3
convs); max-pool 3/1 -> 1x1. Every conv has a bias and is followed by BatchNorm + ReLU.

Parameters: 6,166,250 for 10 classes (6,258,500 for 100). Input: float N x 3 x 32 x 32;
output: logits N x ``num_classes``.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_bn_relu(c_in: int, c_out: int, k: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, k, padding=k // 2), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class Inception(nn.Module):
    def __init__(self, c_in: int, n1x1: int, n3x3red: int, n3x3: int, n5x5red: int, n5x5: int, pool_planes: int):
        super().__init__()
        self.b1 = nn.Sequential(*_conv_bn_relu(c_in, n1x1, 1))
        self.b2 = nn.Sequential(*_conv_bn_relu(c_in, n3x3red, 1), *_conv_bn_relu(n3x3red, n3x3, 3))
        self.b3 = nn.Sequential(
            *_conv_bn_relu(c_in, n5x5red, 1), *_conv_bn_relu(n5x5red, n5x5, 3), *_conv_bn_relu(n5x5, n5x5, 3)
        )
        self.b4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), *_conv_bn_relu(c_in, pool_planes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], dim=1)


class GoogLeNetCIFAR(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.pre_layers = nn.Sequential(*_conv_bn_relu(3, 192, 3))
        self.a3 = Inception(192, 64, 96, 128, 16, 32, 32)
        self.b3 = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.a4 = Inception(480, 192, 96, 208, 16, 48, 64)
        self.b4 = Inception(512, 160, 112, 224, 24, 64, 64)
        self.c4 = Inception(512, 128, 128, 256, 24, 64, 64)
        self.d4 = Inception(512, 112, 144, 288, 32, 64, 64)
        self.e4 = Inception(528, 256, 160, 320, 32, 128, 128)
        self.a5 = Inception(832, 256, 160, 320, 32, 128, 128)
        self.b5 = Inception(832, 384, 192, 384, 48, 128, 128)
        self.avgpool = nn.AvgPool2d(8, stride=1)
        self.linear = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.b3(self.a3(self.pre_layers(x)))
        out = self.e4(self.d4(self.c4(self.b4(self.a4(self.maxpool(out))))))
        out = self.b5(self.a5(self.maxpool(out)))
        return self.linear(self.avgpool(out).flatten(1))


IMPLEMENTATION = GoogLeNetCIFAR
