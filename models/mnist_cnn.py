"""The MNIST CNN of comp_ams §5.1: two convolutional layers followed by two fully connected
layers with ReLU, dropout 0.5 after the max-pooled convolution.

The paper gives no sizes; ours are the classic Keras MNIST CNN that matches that description:
conv 3x3 (1 -> 32), ReLU, conv 3x3 (32 -> 64), ReLU, max-pool 2, dropout 0.5, fc 9216 -> 128,
ReLU, fc 128 -> 10 (1,199,882 parameters). ``dropout`` and ``hidden`` are config options.

``batch_norm=True`` is our variant, not the paper's: BatchNorm after each convolution (before its
ReLU). It exists for the `def` claims at ``scale=long``, whose paper trains only BatchNorm networks
(VGG-16-BN, ResNets, WRN): EF's collapse there is a claim about EF, not about a BN-free CNN.
"""

from __future__ import annotations

import torch
from torch import nn


class MnistCNN(nn.Module):
    def __init__(self, num_classes: int = 10, hidden: int = 128, dropout: float = 0.5, batch_norm: bool = False):
        super().__init__()
        norm = (lambda c: [nn.BatchNorm2d(c)]) if batch_norm else (lambda c: [])
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3),
            *norm(32),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3),
            *norm(64),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Dropout(dropout),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * 12 * 12, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


IMPLEMENTATION = MnistCNN
