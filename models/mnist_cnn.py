"""The MNIST CNN of comp_ams §5.1: two convolutional layers followed by two fully connected
layers with ReLU, dropout 0.5 after the max-pooled convolution.

The paper gives no sizes; ours are the classic Keras MNIST CNN that matches that description:
conv 3x3 (1 -> 32), ReLU, conv 3x3 (32 -> 64), ReLU, max-pool 2, dropout 0.5, fc 9216 -> 128,
ReLU, fc 128 -> 10 (1,199,882 parameters). ``dropout`` and ``hidden`` are config options.
"""

from __future__ import annotations

import torch
from torch import nn


class MnistCNN(nn.Module):
    def __init__(self, num_classes: int = 10, hidden: int = 128, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3),
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
