"""SYNTHETIC stand-ins of the same shape as a real dataset, for smoke tests only.

Every set made here is named ``<dataset>-synthetic`` and described as "SYNTHETIC stand-in
(not <DATASET>)" so it can never pass for the paper's data. Each is drawn from a fixed
``numpy.random.default_rng(seed)`` (independent of the run seed) and carries a class-dependent
signal, so a model can learn it and a smoke run shows a falling loss.
"""

from __future__ import annotations

import numpy as np
import torch

from compress_train.datasets.base import ArrayDataset, Augment


def synthetic_images(
    real_name: str,
    display: str,
    num_classes: int,
    shape: tuple[int, int, int] = (3, 32, 32),
    n_train: int = 2000,
    n_test: int = 500,
    augment: Augment | None = None,
    seed: int = 0,
) -> ArrayDataset:
    """Float32 images N x C x H x W (zero mean, roughly unit variance, like normalised data).

    Class ``c`` has a fixed smooth random template (an 8 x 8 pattern upsampled to H x W);
    an image is 0.8 x its class template + unit Gaussian noise. Labels are balanced.
    """
    rng = np.random.default_rng(seed)
    c, h, w = shape
    coarse = rng.standard_normal((num_classes, c, 8, 8)).astype(np.float32)
    templates = torch.nn.functional.interpolate(
        torch.from_numpy(coarse), size=(h, w), mode="bilinear", align_corners=False
    )

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.from_numpy(rng.permutation(np.arange(n) % num_classes).astype(np.int64))
        noise = torch.from_numpy(rng.standard_normal((n, c, h, w)).astype(np.float32))
        return 0.8 * templates[y] + noise, y

    x_tr, y_tr = split(n_train)
    x_te, y_te = split(n_test)
    desc = (
        f"SYNTHETIC stand-in (not {display}): {n_train:,} train / {n_test:,} test random "
        f"{c}x{h}x{w} images, {num_classes} classes with class-dependent templates (seed {seed})"
    )
    return ArrayDataset(
        x_tr, y_tr, x_te, y_te, f"{real_name}-synthetic", desc, "generated (datasets/synthetic.py)", augment
    )


def synthetic_sequences(
    real_name: str,
    display: str,
    num_words: int,
    maxlen: int,
    num_classes: int = 2,
    n_train: int = 2000,
    n_test: int = 500,
    seed: int = 0,
) -> ArrayDataset:
    """Int64 token ids N x maxlen in Keras' convention (0 pad, 1 start, 2 OOV, words >= 3),
    pre-padded, variable lengths; each class over-uses its own 20 "sentiment" word ids."""
    if num_words < 4 + 20 * num_classes:
        raise ValueError(f"synthetic sequences need num_words >= {4 + 20 * num_classes}, got {num_words}")
    rng = np.random.default_rng(seed)
    cue = rng.permutation(np.arange(4, num_words))[: 20 * num_classes].reshape(num_classes, 20)

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = rng.permutation(np.arange(n) % num_classes).astype(np.int64)
        x = np.zeros((n, maxlen), dtype=np.int64)
        for i in range(n):
            length = int(rng.integers(max(2, maxlen // 4), maxlen + 1))
            words = rng.integers(3, num_words, length - 1)
            hits = rng.random(length - 1) < 0.15
            words[hits] = rng.choice(cue[y[i]], int(hits.sum()))
            x[i, maxlen - length :] = np.concatenate([[1], words])
        return torch.from_numpy(x), torch.from_numpy(y)

    x_tr, y_tr = split(n_train)
    x_te, y_te = split(n_test)
    desc = (
        f"SYNTHETIC stand-in (not {display}): {n_train:,} train / {n_test:,} test random "
        f"token sequences (vocabulary {num_words}, length {maxlen}, {num_classes} classes with "
        f"class-specific cue words, seed {seed})"
    )
    return ArrayDataset(x_tr, y_tr, x_te, y_te, f"{real_name}-synthetic", desc, "generated (datasets/synthetic.py)")
