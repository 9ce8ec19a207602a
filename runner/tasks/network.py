"""A neural-network task: a dataset, a model flattened into one vector, worker mini-batches.

What the trainer asks of a task (``convex_task.py`` is the other kind): the flat parameter
vector the algorithm updates in place, its layer sizes, each local worker's gradient at the
current model, an evaluation, and the summary fields that say what was trained.
``dataset.eval_samples`` = N evaluates on the first N test samples (smoke tests; null = all), and the
summary's ``dataset.eval_samples`` then says so.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from compress_train.algorithms.base import Needs
from compress_train.algorithms.communicator import Communicator
from compress_train.compressors.base import generator_for
from compress_train.runner.config.check import _int, component_params
from compress_train.runner.tasks import models
from compress_train.runner.tasks.base import Task
from compress_train.runner.tasks.batched_workers import BatchedWorkers
from compress_train.runner.tasks.data import load_dataset, seek_streams, streams_state, worker_streams
from compress_train.runner.tasks.flat import FlatModel


def dropout_seed(seed: int, step: int, worker: int) -> int:
    return (seed * 1_000_003 + step) * 1009 + worker


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, device: torch.device
) -> dict[str, float]:
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(y), batch_size):
        xb, yb = x[i : i + batch_size].to(device), y[i : i + batch_size].to(device)
        out = model(xb)
        loss += float(F.cross_entropy(out, yb, reduction="sum"))
        correct += int((out.argmax(1) == yb).sum())
    model.train()
    return {"test_loss": loss / len(y), "test_acc": correct / len(y)}


class NetworkTask(Task):
    """Cross-entropy training of ``cfg.model`` on ``cfg.dataset``, each worker on its own shard."""

    @classmethod
    def check_dataset(cls, d: DictConfig) -> list[str]:
        errors: list[str] = []
        _int(errors, "dataset.eval_samples", d.get("eval_samples"), 1, allow_none=True)
        return errors

    @classmethod
    def check_model(cls, cfg: DictConfig) -> list[str]:
        if cfg.model.name not in models.available():
            return [f"`model.name` must be one of {models.available()}, but is {cfg.model.name!r}."]
        return models.check(cfg.model.name, component_params(cfg.model))

    def __init__(
        self,
        cfg: DictConfig,
        comm: Communicator,
        log: Callable[[str], None],
        device: torch.device,
        needs: Needs = Needs(),
    ):
        self.cfg, self.comm, self.device = cfg, comm, device
        data = load_dataset(cfg.dataset, log)
        self.data = data
        self.summary_fields: dict[str, Any] = {
            "dataset": {"name": data.name, "description": data.description, "source": data.source},
            "num_classes": data.num_classes,
        }
        self.x_train, self.y_train = data.x_train.to(device), data.y_train.to(device)
        n_eval = min(cfg.dataset.get("eval_samples") or len(data.y_test), len(data.y_test))
        self.x_test, self.y_test = data.x_test[:n_eval], data.y_test[:n_eval]
        if n_eval < len(data.y_test):  # test metrics on a part of the test set: the summary says which
            self.summary_fields["dataset"]["eval_samples"] = int(n_eval)
        self.streams, self.steps_per_epoch = worker_streams(
            data.y_train.numpy(), comm.local_workers, cfg.workers, cfg.dataset, cfg.train.batch_size, cfg.seed
        )
        torch.manual_seed(cfg.seed)  # identical initial model in every process
        self.model = models.build(cfg.model.name, component_params(cfg.model), data.num_classes).to(device)
        self.flat = FlatModel(self.model)
        self.params, self.layer_sizes, self.numel = self.flat.params, self.flat.layer_sizes, self.flat.numel
        self.samples_per_step = cfg.workers * cfg.train.batch_size
        self.buffers = [b for b in self.model.buffers() if b.is_floating_point()]
        self.average_buffers = cfg.train.get("bn_stats", "broadcast") == "average"
        self.worker_buffers: list[torch.Tensor] = []
        self.decay_mask = self.flat.norm_mask().to(device)
        # train.batched_workers: all local workers' forward/backward in one vmapped call (batched_workers.py)
        self.batched = BatchedWorkers(self, dropout_seed) if cfg.train.get("batched_workers", False) else None

    supports_worker_points = True

    def local_gradients(
        self, step: int, point: torch.Tensor, points: dict[int, torch.Tensor] | None = None
    ) -> tuple[dict[int, torch.Tensor], list[float]]:
        """Gradients at the model's parameters (``point`` must be them), or with ``points`` at each
        worker's own point, loaded into the model for its pass and the parameters put back after.
        BatchNorm statistics (``train.bn_stats``): worker 0's (``broadcast``) or, with ``average``,
        every worker's kept for ``after_step`` to average. Each worker's accuracy on its batch goes
        into ``last_accuracies``."""
        if self.batched is not None:
            batched = self.batched.local_gradients(step, points)
            if batched is not None:
                return batched
        grads, losses, accuracies = {}, [], []
        snapshot = [b.clone() for b in self.buffers] if len(self.comm.local_workers) > 1 else None
        iterate = self.params.clone() if points is not None else None
        kept = None
        self.worker_buffers = []
        for i, w in enumerate(self.comm.local_workers):
            if snapshot is not None and i > 0:
                for b, s in zip(self.buffers, snapshot):
                    b.copy_(s)
            if points is not None:
                self.params.copy_(points[w])
            idx = torch.from_numpy(self.streams[w].next()).to(self.device)
            torch.manual_seed(dropout_seed(self.cfg.seed, step, w))
            x = self.x_train[idx]
            if self.data.augment is not None:
                x = self.data.augment(x, generator_for((self.cfg.seed, step, w), "cpu"))
            self.flat.zero_grad()
            out = self.model(x)
            loss = F.cross_entropy(out, self.y_train[idx])
            loss.backward()
            grads[w] = self.flat.gradient().clone()
            losses.append(loss.item())
            accuracies.append(int((out.detach().argmax(1) == self.y_train[idx]).sum()) / len(idx))
            if self.average_buffers and self.buffers:
                self.worker_buffers.append(torch.cat([b.reshape(-1) for b in self.buffers]))
            if snapshot is not None and i == 0:
                kept = [b.clone() for b in self.buffers]
        if kept is not None:  # BatchNorm statistics: worker 0's, as torchrun broadcasts them
            for b, k in zip(self.buffers, kept):
                b.copy_(k)
        if iterate is not None:
            self.params.copy_(iterate)
        self.last_accuracies = accuracies
        return grads, losses

    def state_dict(self) -> dict[str, Any]:
        return {"streams": streams_state(self.streams), "buffers": dict(self.model.named_buffers())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        seek_streams(self.streams, state["streams"])
        buffers = dict(self.model.named_buffers())
        if set(buffers) != set(state["buffers"]):
            raise ValueError(f"the checkpoint's model buffers {sorted(state['buffers'])} are not this model's")
        for name, b in buffers.items():
            b.copy_(state["buffers"][name])

    def after_step(self) -> None:
        """Share the BatchNorm statistics after the communication: worker 0's (broadcast, not
        counted) or, with ``train.bn_stats=average`` (def's code), their mean over the workers
        (one allreduce, counted in ``wire_bytes``)."""
        if self.average_buffers and self.worker_buffers:
            mean = self.comm.allreduce_mean(self.worker_buffers)
            for b, part in zip(self.buffers, mean.split([b.numel() for b in self.buffers])):
                b.copy_(part.view_as(b))
            self.worker_buffers = []
            return
        for b in self.buffers:
            self.comm.broadcast_(b, src=0)

    def evaluate(self) -> dict[str, float]:
        return evaluate(self.model, self.x_test, self.y_test, self.cfg.train.eval_batch_size, self.device)


IMPLEMENTATION = NetworkTask
