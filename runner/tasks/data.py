"""Datasets by name (``dataset.name`` = module stem under ``datasets/``) and each worker's endless stream of mini-batches from its own shard."""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
from omegaconf import DictConfig

from compress_train.compressors.registry import Registry
from compress_train.datasets.base import ArrayDataset
from compress_train.datasets.errors import DataSizeError
from compress_train.datasets.partition import ShardSampler, partition_indices

DATASETS = Registry("compress_train.datasets", "dataset.name")


def load_dataset(cfg: DictConfig, log: Callable[[str], None]) -> ArrayDataset:
    return DATASETS.get(cfg.name)(cfg, log)


class WorkerStream:
    """Worker ``w``'s batches, epoch after epoch of its own shard (seeded by run seed, w, epoch)."""

    def __init__(self, shard: np.ndarray, batch_size: int, seed: int, worker: int):
        check_batch_fits(batch_size, worker, len(shard))
        self.sampler = ShardSampler(shard, batch_size, seed, worker)
        self.epoch, self.position = 0, 0  # batches drawn in this epoch
        self._it: Iterator[np.ndarray] = self.sampler.batches(0)

    def next(self) -> np.ndarray:
        try:
            batch = next(self._it)
        except StopIteration:
            self.epoch, self.position = self.epoch + 1, 0
            self._it = self.sampler.batches(self.epoch)
            batch = next(self._it)
        self.position += 1
        return batch

    def state(self) -> list[int]:
        return [self.epoch, self.position]

    def seek(self, state: list[int]) -> None:
        """Continue where ``state()`` was taken: the same epoch's order, ``position`` batches in."""
        self.epoch, position = int(state[0]), int(state[1])
        self._it, self.position = self.sampler.batches(self.epoch), 0
        for _ in range(position):
            next(self._it)
            self.position += 1


def check_batch_fits(batch_size: int, worker: int, shard_size: int) -> None:
    """``DataSizeError`` naming ``train.batch_size`` when worker ``worker``'s shard holds less than one batch."""
    if shard_size < batch_size:
        raise DataSizeError(
            f"`train.batch_size` ({batch_size}) is larger than worker {worker}'s shard "
            f"({shard_size} samples): lower it or use fewer workers."
        )


def streams_state(streams: dict[int, WorkerStream]) -> dict[int, list[int]]:
    return {w: s.state() for w, s in streams.items()}


def seek_streams(streams: dict[int, WorkerStream], state: dict[int, list[int]]) -> None:
    if set(state) != set(streams):
        raise ValueError(
            f"the checkpoint holds data streams of workers {sorted(state)}, this process runs {sorted(streams)}"
        )
    for w, s in streams.items():
        s.seek(state[w])


def worker_streams(
    labels, workers: list[int], n: int, cfg: DictConfig, batch_size: int, seed: int
) -> tuple[dict[int, WorkerStream], int]:
    """Streams for the local ``workers`` and the steps per epoch (mean shard size / batch).

    Every process checks every worker's shard (not only its own), so that all of them stop with the
    same ``DataSizeError`` when the smallest shard holds less than one batch."""
    shards = partition_indices(labels, n, cfg.partition, seed, alpha=cfg.alpha)
    smallest = int(np.argmin([len(s) for s in shards]))
    check_batch_fits(batch_size, smallest, len(shards[smallest]))
    steps = max(1, int(np.mean([len(s) for s in shards])) // batch_size)
    return {w: WorkerStream(shards[w], batch_size, seed, w) for w in workers}, steps
