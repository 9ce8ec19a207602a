"""The CIFAR CNN of comp_ams §5.3: "a larger CNN model with 3 convolutional layers".

The paper's supplement (with the exact sizes) is not in our copy, so the choice is the common
three-block CIFAR CNN that fits that description: three blocks of conv 3x3 (padding 1) + ReLU +
max-pool 2 with 3 -> 32 -> 64 -> 128 channels (32 -> 16 -> 8 -> 4 pixels), then fc 2048 ->
``hidden`` (256), ReLU, dropout (0.5), fc -> ``num_classes``. With the defaults it has 620,362
parameters for CIFAR-10 (643,492 for CIFAR-100). Input: float N x 3 x 32 x 32; output: logits.
"""

from __future__ import annotations

import torch
from torch import nn


class CifarCNN(nn.Module):
    def __init__(self, num_classes: int = 10, hidden: int = 256, dropout: float = 0.5):
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]

        self.features = nn.Sequential(*block(3, 32), *block(32, 64), *block(64, 128))
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(128 * 4 * 4, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


IMPLEMENTATION = CifarCNN
