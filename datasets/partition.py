"""Splitting a training set across workers, and per-worker seeded mini-batch sampling.

``partition_indices`` returns one index array per worker. Shards are disjoint, deterministic
given (labels, n_workers, scheme, seed, alpha), and each shard is returned SORTED ascending
(the order within an epoch comes from ``ShardSampler``, not from the partition). Nothing here
touches numpy's or torch's global RNG.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from compress_train.datasets.errors import DataSizeError

SCHEMES = ("iid", "label_sorted", "dirichlet")
DIRICHLET_TRIES = 10


def _as_labels(labels: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"partition_indices: labels must be 1-D, got shape {labels.shape}")
    return labels


def _equal_shards(order: np.ndarray, n_workers: int) -> list[np.ndarray]:
    size = len(order) // n_workers  # the last len % n_workers samples of `order` are dropped
    if size == 0:
        raise ValueError(f"cannot split {len(order)} samples into {n_workers} non-empty equal shards")
    return [np.sort(order[i * size : (i + 1) * size]) for i in range(n_workers)]


def _dirichlet(
    labels: np.ndarray,
    n_workers: int,
    rng: np.random.Generator,
    alpha: float,
) -> list[np.ndarray]:
    if not alpha > 0:
        raise ValueError(f"dataset.alpha must be > 0 for the dirichlet partition, got {alpha}")
    for _ in range(DIRICHLET_TRIES):
        parts: list[list[np.ndarray]] = [[] for _ in range(n_workers)]
        for c in np.unique(labels):
            idx = rng.permutation(np.flatnonzero(labels == c))
            p = rng.dirichlet(np.full(n_workers, alpha))
            cuts = np.floor(np.cumsum(p)[:-1] * len(idx)).astype(np.int64)
            for w, chunk in enumerate(np.split(idx, cuts)):
                parts[w].append(chunk)
        shards = [np.sort(np.concatenate(p)).astype(np.int64) for p in parts]
        if all(len(s) > 0 for s in shards):
            return shards
    raise DataSizeError(
        f"`dataset.alpha` ({alpha}) is too small for {n_workers} workers and {len(labels)} samples: the "
        f"dirichlet partition left a worker with no samples in {DIRICHLET_TRIES} tries; raise it or use fewer workers."
    )


def partition_indices(
    labels: np.ndarray | torch.Tensor, n_workers: int, scheme: str, seed: int, alpha: float = 0.5
) -> list[np.ndarray]:
    """Split sample indices 0..len(labels)-1 into ``n_workers`` disjoint, sorted int64 shards.

    * ``iid``: a seeded random permutation cut into equal shards (at most n_workers-1 dropped).
    * ``label_sorted``: indices sorted by label (ties in seeded random order), cut into
      contiguous equal shards (remainder dropped): each worker sees few classes.
    * ``dirichlet``: per class, proportions ~ Dirichlet(alpha * ones(n_workers)); sizes differ,
      every worker gets >= 1 sample (resampled up to 10 times, else DataSizeError).

    More workers than samples, or a dirichlet draw that keeps leaving a worker empty, raise
    ``DataSizeError`` (a ``DataFileError``) naming the key to change.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"dataset.partition={scheme!r} is not a known scheme; allowed: {', '.join(SCHEMES)}")
    if int(n_workers) < 1:
        raise ValueError(f"partition_indices: n_workers must be >= 1, got {n_workers}")
    labels = _as_labels(labels)
    if n_workers > len(labels):
        raise DataSizeError(
            f"`workers` ({n_workers}) is more than the training samples ({len(labels)}): "
            "every worker needs a non-empty shard; use fewer workers."
        )
    rng = np.random.default_rng(seed)
    if scheme == "iid":
        return _equal_shards(rng.permutation(len(labels)), n_workers)
    if scheme == "label_sorted":
        perm = rng.permutation(len(labels))
        return _equal_shards(perm[np.argsort(labels[perm], kind="stable")], n_workers)
    return _dirichlet(labels, n_workers, rng, alpha)


class ShardSampler:
    """Seeded mini-batches over one worker's shard.

    Epoch ``e`` visits the shard in the order ``np.random.default_rng([seed, worker, e])
    .permutation(len(shard))`` and yields ``steps_per_epoch`` batches of exactly
    ``batch_size`` dataset indices (the incomplete last batch is dropped). Independent of any
    global RNG; ``seed``, ``worker`` and ``epoch`` must be non-negative integers.
    """

    def __init__(self, shard: np.ndarray, batch_size: int, seed: int, worker: int) -> None:
        self.shard = np.asarray(shard, dtype=np.int64)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(self.shard) < batch_size:
            raise ValueError(
                f"worker {worker}'s shard holds {len(self.shard)} samples, fewer than one batch of {batch_size}"
            )
        self.batch_size, self.seed, self.worker = int(batch_size), int(seed), int(worker)

    @property
    def steps_per_epoch(self) -> int:
        """Number of full batches per epoch: ``len(shard) // batch_size``."""
        return len(self.shard) // self.batch_size

    def batches(self, epoch: int) -> Iterator[np.ndarray]:
        """Yield this epoch's batches (int64 index arrays of length ``batch_size``)."""
        perm = np.random.default_rng([self.seed, self.worker, int(epoch)]).permutation(len(self.shard))
        b = self.batch_size
        for i in range(self.steps_per_epoch):
            yield self.shard[perm[i * b : (i + 1) * b]]
