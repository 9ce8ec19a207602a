"""CIFAR-10 (``dataset=cifar10``): the python batches from ``dataset.root`` (``cifar.py``)."""

from __future__ import annotations

from typing import Callable

from compress_train.datasets.base import ArrayDataset
from compress_train.datasets.cifar import load_cifar


def load(d, log: Callable[[str], None]) -> ArrayDataset:
    return load_cifar(
        "cifar10",
        d.root,
        download=d.download,
        synthetic=d.get("synthetic", False),
        augment=d.get("augment", True),
        log=log,
    )


IMPLEMENTATION = load
