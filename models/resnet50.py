"""ResNet-50 (He et al. 2016, "Deep residual learning for image recognition"), the DEF paper's
ImageNet network: torchvision's ``torchvision.models.resnet50(weights=None, num_classes=...)``,
as the authors' code builds it (github anxuthu/DEF ``main.py``: ``torchvision.models.resnet50()``
for ``--dataset imagenet``; checked at commit 892ed9c). Bottleneck blocks [3, 4, 6, 3] (torchvision's
"v1.5": the stride sits in the 3x3 conv), 7x7 stem + max-pool, global average pool, linear
2048 -> ``num_classes``; torchvision's default initialisation, no pretrained weights.

Parameters: 25,557,032 for 1000 classes (ImageNet); 2049 per class, so 23,528,522 for 10.
Input: float N x 3 x H x W (224 x 224 for ImageNet; any size >= 32 works thanks to the adaptive
pool); output: logits N x ``num_classes``.
"""

from __future__ import annotations

from torch import nn


def resnet50(num_classes: int = 1000) -> nn.Module:
    from torchvision.models import resnet50 as torchvision_resnet50

    return torchvision_resnet50(weights=None, num_classes=num_classes)


IMPLEMENTATION = resnet50
