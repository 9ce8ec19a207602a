"""Worker partitions and the per-worker shard sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from compress_train.datasets.partition import ShardSampler, partition_indices

LABELS = np.repeat(np.arange(10), 100)  # balanced, 1000 samples


def _disjoint(shards: list[np.ndarray]) -> bool:
    allidx = np.concatenate(shards)
    return len(np.unique(allidx)) == len(allidx)


@pytest.mark.parametrize("scheme", ["iid", "label_sorted"])
def test_equal_disjoint_shards(scheme: str) -> None:
    labels = np.random.default_rng(1).permutation(np.repeat(np.arange(10), 103))  # 1030
    shards = partition_indices(labels, 7, scheme, seed=3)
    assert len(shards) == 7 and _disjoint(shards)
    assert {len(s) for s in shards} == {1030 // 7}
    assert sum(map(len, shards)) >= 1030 - 6
    assert all(np.all(np.diff(s) > 0) for s in shards)  # sorted


def test_label_sorted_few_classes_per_shard() -> None:
    labels = np.random.default_rng(0).permutation(LABELS)
    shards = partition_indices(torch.from_numpy(labels), 10, "label_sorted", seed=0)
    assert all(len(np.unique(labels[s])) <= 2 for s in shards)
    iid = partition_indices(labels, 10, "iid", seed=0)
    assert all(len(np.unique(labels[s])) >= 8 for s in iid)


def test_dirichlet_skew_depends_on_alpha() -> None:
    def mean_max_class_share(alpha: float) -> float:
        shards = partition_indices(LABELS, 5, "dirichlet", seed=0, alpha=alpha)
        assert len(shards) == 5 and _disjoint(shards) and all(len(s) > 0 for s in shards)
        assert sum(map(len, shards)) == len(LABELS)
        return float(np.mean([np.bincount(LABELS[s], minlength=10).max() / len(s) for s in shards]))

    assert mean_max_class_share(0.05) > 0.5
    assert mean_max_class_share(1000.0) < 0.2


def test_dirichlet_too_small_alpha_raises() -> None:
    with pytest.raises(ValueError, match="alpha"):
        partition_indices(np.zeros(20, dtype=int), 15, "dirichlet", seed=0, alpha=1e-4)


@pytest.mark.parametrize("scheme", ["iid", "label_sorted", "dirichlet"])
def test_deterministic(scheme: str) -> None:
    a = partition_indices(LABELS, 4, scheme, seed=5)
    b = partition_indices(LABELS, 4, scheme, seed=5)
    c = partition_indices(LABELS, 4, scheme, seed=6)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(len(x) == len(y) and np.array_equal(x, y) for x, y in zip(a, c))


def test_bad_scheme_message() -> None:
    with pytest.raises(ValueError, match=r"dataset\.partition='shuffled'.*iid, label_sorted, dirichlet"):
        partition_indices(LABELS, 4, "shuffled", seed=0)


def test_shard_sampler() -> None:
    shard = np.arange(100, 203)  # 103 samples
    s = ShardSampler(shard, batch_size=10, seed=7, worker=2)
    assert s.steps_per_epoch == 10
    e0 = list(s.batches(0))
    assert len(e0) == 10 and all(len(b) == 10 for b in e0)
    flat = np.concatenate(e0)
    assert len(np.unique(flat)) == 100 and np.isin(flat, shard).all()
    np.random.seed(0)
    torch.manual_seed(0)  # global RNGs must not matter
    again = list(ShardSampler(shard, 10, seed=7, worker=2).batches(0))
    assert all(np.array_equal(x, y) for x, y in zip(e0, again))
    assert not np.array_equal(flat, np.concatenate(list(s.batches(1))))
    assert not np.array_equal(flat, np.concatenate(list(ShardSampler(shard, 10, 7, 3).batches(0))))
    with pytest.raises(ValueError):
        ShardSampler(shard[:5], batch_size=10, seed=0, worker=0)
