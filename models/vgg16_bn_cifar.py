"""VGG-16 with BatchNorm for CIFAR, the DEF paper's CIFAR network (Xu & Huang, "Detached Error
Feedback for Distributed SGD with Random Sparsification", ICML 2022), in the form of the authors'
code: github anxuthu/DEF, ``models/vgg.py``, ``vgg16bn`` (checked at commit 892ed9c).

Features (the VGG-16 configuration [64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M,
512, 512, 512, M]): every number a 3x3 conv (padding 1, WITH bias) + BatchNorm + ReLU, every M a
2x2 max-pool; five pools take 32x32 to 1x1, so the flattened features have 512 entries.

Classifier (``classifier``):

* ``def`` (default, the authors' code): Dropout(``dropout``) -> Linear 512 -> 512 -> ReLU ->
  Dropout(``dropout``) -> Linear 512 -> 512 -> ReLU -> Linear 512 -> ``num_classes``
  (``nn.Dropout()``'s p = 0.5 there).
* ``linear``: the kuangliu/pytorch-cifar ``VGG('VGG16')`` head, one Linear 512 -> ``num_classes``
  (its trailing 1x1 average pool is the identity and is left out).

Initialisation as in the authors' code: conv weights N(0, 2 / (9 * out_channels)), conv biases 0;
BatchNorm and Linear layers keep PyTorch's defaults.

Parameters: ``def`` 15,253,578 for 10 classes (15,299,748 for 100); ``linear`` 14,728,266 for 10
(14,774,436 for 100). Input: float N x 3 x 32 x 32; output: logits N x ``num_classes``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

CFG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
CLASSIFIERS = ("def", "linear")


def make_features(cfg=CFG16) -> nn.Sequential:
    layers: list[nn.Module] = []
    c_in = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(c_in, v, kernel_size=3, padding=1), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
            c_in = v
    return nn.Sequential(*layers)


class VGG16BNCIFAR(nn.Module):
    def __init__(self, num_classes: int = 10, classifier: str = "def", dropout: float = 0.5):
        super().__init__()
        if classifier not in CLASSIFIERS:
            raise ValueError(f"`model.classifier` must be one of {list(CLASSIFIERS)}, but is {classifier!r}.")
        if not (isinstance(dropout, (int, float)) and not isinstance(dropout, bool) and 0 <= dropout < 1):
            raise ValueError(f"`model.dropout` must be a number in [0, 1), but is {dropout!r}.")
        self.features = make_features()
        if classifier == "def":
            self.classifier = nn.Sequential(
                nn.Dropout(dropout),
                nn.Linear(512, 512),
                nn.ReLU(True),
                nn.Dropout(dropout),
                nn.Linear(512, 512),
                nn.ReLU(True),
                nn.Linear(512, num_classes),
            )
        else:
            self.classifier = nn.Sequential(nn.Linear(512, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
                assert m.bias is not None  # the convolutions above are built with a bias
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


IMPLEMENTATION = VGG16BNCIFAR
