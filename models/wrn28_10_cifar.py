"""Wide ResNet 28-10 for CIFAR (Zagoruyko & Komodakis 2016, "Wide residual networks"), the DEF
paper's third CIFAR network (Xu & Huang, ICML 2022). ``depth`` = 6n + 4 (28: n = 4 blocks per
stage), ``widen`` = k (10), ``dropout`` between a block's two convs (0 by default, as DEF's
``WideResNet28x10`` leaves it).

* Stem: conv 3x3, 3 -> 16. Three stages of n pre-activation basic blocks, widths 16k, 32k, 64k
  (160, 320, 640), stride 1, 2, 2 in the first block of a stage. A block: BN + ReLU, conv 3x3,
  dropout, BN + ReLU, conv 3x3, plus the shortcut: the input, or where the shape changes a 1x1 conv.
* Head: BN + ReLU, average pool 8 (8x8 -> 1x1), linear 64k -> ``num_classes``.

``variant`` picks between the two forms of that architecture in circulation:

* ``def`` (default): the authors' code, github anxuthu/DEF ``models/wide_resnet.py`` (checked at
  commit 892ed9c; ported from meliketoy/wide-resnet.pytorch): every conv WITH bias, the stride in
  the block's SECOND conv, the 1x1 shortcut conv (with bias) on the raw block input, the final
  BatchNorm with momentum 0.9 (PyTorch convention: running stats mostly the last batch's), PyTorch's
  default initialisation (DEF's ``main.py`` never applies the port's ``conv_init``).
* ``official``: Zagoruyko & Komodakis's own PyTorch code (szagoruyko/wide-residual-networks,
  ``pytorch/resnet.py``): convs WITHOUT bias, the stride in the block's first conv, the 1x1
  shortcut conv on the pre-activated input (relu(bn(x))), every BatchNorm momentum 0.1, conv
  weights Kaiming-normal (fan-in); the commonly cited 36.5M parameters.

Parameters for depth 28, widen 10: ``official`` 36,479,194 for 10 classes (36,536,884 for 100);
``def`` adds the conv biases (10,096): 36,489,290 for 10 (36,546,980 for 100). Input: float
N x 3 x 32 x 32; output: logits N x ``num_classes``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

VARIANTS = ("def", "official")


class WideBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, dropout: float, variant: str):
        super().__init__()
        bias = variant == "def"
        first, second = (1, stride) if variant == "def" else (stride, 1)
        self.official = variant == "official"
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=first, padding=1, bias=bias)
        self.dropout = nn.Dropout(p=dropout)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=second, padding=1, bias=bias)
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=bias) if stride != 1 or c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o1 = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.dropout(self.conv1(o1)))))
        if self.shortcut is None:
            return out + x
        return out + self.shortcut(o1 if self.official else x)


class WideResNetCIFAR(nn.Module):
    def __init__(
        self, num_classes: int = 10, depth: int = 28, widen: int = 10, dropout: float = 0.0, variant: str = "def"
    ):
        super().__init__()
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 10 or (depth - 4) % 6:
            raise ValueError(
                f"`model.depth` must be 6n + 4 for an integer n >= 1 (10, 16, 22, 28, 40, ...), but is {depth!r}."
            )
        if not isinstance(widen, int) or isinstance(widen, bool) or widen < 1:
            raise ValueError(f"`model.widen` must be an integer >= 1, but is {widen!r}.")
        if not (isinstance(dropout, (int, float)) and not isinstance(dropout, bool) and 0 <= dropout < 1):
            raise ValueError(f"`model.dropout` must be a number in [0, 1), but is {dropout!r}.")
        if variant not in VARIANTS:
            raise ValueError(f"`model.variant` must be one of {list(VARIANTS)}, but is {variant!r}.")
        n = (depth - 4) // 6
        widths = (16 * widen, 32 * widen, 64 * widen)
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=variant == "def")
        stages, c_in = [], 16
        for c_out, stride in zip(widths, (1, 2, 2)):
            blocks = []
            for i in range(n):
                blocks.append(WideBlock(c_in, c_out, stride if i == 0 else 1, float(dropout), variant))
                c_in = c_out
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.bn1 = nn.BatchNorm2d(c_in, momentum=0.9 if variant == "def" else 0.1)
        self.linear = nn.Linear(c_in, num_classes)
        if variant == "official":
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        out = F.avg_pool2d(F.relu(self.bn1(out)), 8)
        return self.linear(out.flatten(1))


IMPLEMENTATION = WideResNetCIFAR
