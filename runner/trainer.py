"""The training loop shared by the simulator and torchrun (design.md §3, "Trainer").

Each process runs the workers in ``comm.local_workers``. Per iteration every local worker draws
a batch from its own shard, computes its gradient at the current (replicated) model with
dropout seeded by (seed, step, worker), and hands the gradients to the algorithm, which
compresses, exchanges and updates the parameters. The writer process (worker 0's) logs a
metrics row every ``train.log_every`` steps, evaluates every ``train.eval_every`` steps, and
keeps ``summary.json`` current. A NaN/inf loss ends the run with status ``diverged``; Ctrl-C
with status ``interrupted``; both keep everything written so far.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from compress_train.algorithms import registry as algorithms
from compress_train.algorithms.communicator import Communicator
from compress_train.compressors import registry as compressors
from compress_train.compressors.base import generator_for
from compress_train.compressors.scope import ScopedCompressor
from compress_train.runner import models
from compress_train.runner.config_check import component_params
from compress_train.runner.data import load_dataset, worker_streams
from compress_train.runner.flat import FlatModel
from compress_train.runner.metrics import Sink


def dropout_seed(seed: int, step: int, worker: int) -> int:
    return (seed * 1_000_003 + step) * 1009 + worker


@dataclass
class Totals:
    """Cumulative traffic and time since step 0 (per worker, mean over workers)."""

    bits_up: float = 0.0
    bits_down: float = 0.0
    elements_up: float = 0.0
    wire_bytes: float = 0.0
    total_error: float = 0.0
    time_compute_s: float = 0.0
    time_compress_s: float = 0.0
    time_comm_s: float = 0.0
    density_sum: float = 0.0
    steps: int = 0
    last: dict[str, float] = field(default_factory=dict)


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
             device: torch.device) -> dict[str, float]:
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(y), batch_size):
        xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        out = model(xb)
        loss += float(F.cross_entropy(out, yb, reduction="sum"))
        correct += int((out.argmax(1) == yb).sum())
    model.train()
    return {"test_loss": loss / len(y), "test_acc": correct / len(y)}


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Trainer:
    def __init__(self, cfg: DictConfig, comm: Communicator, sinks: list[Sink],
                 summary: dict[str, Any], log: Callable[[str], None], device: torch.device):
        self.cfg, self.comm, self.sinks, self.summary, self.log = cfg, comm, sinks, summary, log
        self.device = device
        data = load_dataset(cfg.dataset, log)
        self.data = data
        summary["dataset"] = {"name": data.name, "description": data.description, "source": data.source}
        self.x_train, self.y_train = data.x_train.to(device), data.y_train.to(device)
        self.streams, self.steps_per_epoch = worker_streams(
            data.y_train.numpy(), comm.local_workers, cfg.workers, cfg.dataset, cfg.train.batch_size, cfg.seed)
        torch.manual_seed(cfg.seed)  # identical initial model in every process
        model = models.build(cfg.model.name, component_params(cfg.model), data.num_classes).to(device)
        self.flat = FlatModel(model)
        self.model = model
        summary["num_params"] = self.flat.numel
        algo_cls = algorithms.get(cfg.algo.name)
        scoped = None
        if algo_cls.uses_compressor:
            comp = compressors.build(cfg.compressor.name, component_params(cfg.compressor, ("name", "scope")))
            scoped = ScopedCompressor(comp, self.flat.layer_sizes, cfg.compressor.scope)
        self.algo = algo_cls(self.flat.params, comm, scoped, seed=cfg.seed, **component_params(cfg.algo))
        summary["ef"] = self.algo.ef
        self.buffers = [b for b in model.buffers() if b.is_floating_point()]
        total = cfg.train.epochs * self.steps_per_epoch
        self.total_steps = min(total, cfg.train.max_steps) if cfg.train.max_steps else total
        self.totals = Totals()

    # -- one iteration --------------------------------------------------------------------------

    def local_gradients(self, step: int) -> tuple[dict[int, torch.Tensor], list[float]]:
        grads, losses = {}, []
        snapshot = [b.clone() for b in self.buffers] if len(self.comm.local_workers) > 1 else None
        kept = None
        for i, w in enumerate(self.comm.local_workers):
            if snapshot is not None and i > 0:
                for b, s in zip(self.buffers, snapshot):
                    b.copy_(s)
            idx = torch.from_numpy(self.streams[w].next()).to(self.device)
            torch.manual_seed(dropout_seed(self.cfg.seed, step, w))
            x = self.x_train[idx]
            if self.data.augment is not None:
                x = self.data.augment(x, generator_for((self.cfg.seed, step, w), "cpu"))
            self.flat.zero_grad()
            loss = F.cross_entropy(self.model(x), self.y_train[idx])
            loss.backward()
            grads[w] = self.flat.gradient().clone()
            losses.append(loss.item())
            if snapshot is not None and i == 0:
                kept = [b.clone() for b in self.buffers]
        if kept is not None:  # BatchNorm statistics: worker 0's, as torchrun broadcasts them
            for b, k in zip(self.buffers, kept):
                b.copy_(k)
        return grads, losses

    def run_step(self, step: int) -> float:
        t0 = time.perf_counter()
        grads, losses = self.local_gradients(step)
        t1 = time.perf_counter()
        wire_before = self.comm.wire_bytes
        report = self.algo.step(grads, step)
        for b in self.buffers:
            self.comm.broadcast_(b, src=0)
        all_losses = self.comm.gather_floats(losses)
        errors = self.comm.gather_floats([report.error_norms.get(w, 0.0) for w in self.comm.local_workers])
        t = self.totals
        t.steps += 1
        t.bits_up += report.bits_up
        t.bits_down += report.bits_down
        t.elements_up += report.elements_up
        t.wire_bytes += self.comm.wire_bytes - wire_before
        density = report.elements_up / self.flat.numel
        t.density_sum += density
        t.total_error += sum(e * e for e in errors) / len(errors)
        t.time_compute_s += t1 - t0
        t.time_compress_s += report.time_compress_s
        t.time_comm_s += report.time_comm_s
        t.last = {"bits_up_step": report.bits_up, "bits_down_step": report.bits_down,
                  "elements_up_step": report.elements_up, "wire_bytes_step": self.comm.wire_bytes - wire_before,
                  "density": density, "error_norm": sum(errors) / len(errors)}
        return sum(all_losses) / len(all_losses)

    # -- the loop -------------------------------------------------------------------------------

    def row(self, step: int, train_loss: float, start: float) -> dict[str, Any]:
        t = self.totals
        return {
            "step": step, "epoch": step / self.steps_per_epoch,
            "samples": step * self.cfg.workers * self.cfg.train.batch_size, "lr": self.algo.lr,
            "train_loss": train_loss,
            "bits_up": t.bits_up, "bits_down": t.bits_down, "elements_up": t.elements_up,
            "wire_bytes": t.wire_bytes, **t.last, "avg_density": t.density_sum / max(t.steps, 1),
            "total_error": t.total_error, "time_compute_s": t.time_compute_s,
            "time_compress_s": t.time_compress_s, "time_comm_s": t.time_comm_s,
            "time_s": time.perf_counter() - start,
        }

    def emit(self, row: dict[str, Any]) -> None:
        if self.comm.is_writer:
            for sink in self.sinks:
                sink.log(row)

    def write_summary(self, status: str, final: dict[str, Any]) -> None:
        t = self.totals
        self.summary.update(status=status, final=final, steps=t.steps, totals={
            "bits_up": t.bits_up, "bits_down": t.bits_down, "elements_up": t.elements_up,
            "wire_bytes": t.wire_bytes, "total_error": t.total_error,
            "avg_density": t.density_sum / max(t.steps, 1),
            "time_compute_s": t.time_compute_s, "time_compress_s": t.time_compress_s,
            "time_comm_s": t.time_comm_s})
        if self.comm.is_writer:
            for sink in self.sinks:
                sink.summary(self.summary)

    def train(self, progress=None) -> str:
        cfg = self.cfg.train
        start = time.perf_counter()
        window: list[float] = []
        last: dict[str, Any] = {}
        status = "completed"
        self.write_summary("running", {})
        try:
            for step in range(1, self.total_steps + 1):
                loss = self.run_step(step - 1)
                window.append(loss)
                if not math.isfinite(loss):
                    status = "diverged"
                    last = self.row(step, loss, start)
                    self.emit(last)
                    self.log(f"diverged at step {step}: training loss is {loss}")
                    break
                if step % cfg.log_every == 0 or step % cfg.eval_every == 0 or step == self.total_steps:
                    last = self.row(step, sum(window) / len(window), start)
                    window = []
                    if self.comm.is_writer and (step % cfg.eval_every == 0 or step == self.total_steps):
                        last.update(evaluate(self.model, self.data.x_test, self.data.y_test,
                                             cfg.eval_batch_size, self.device))
                        self.write_summary("running", last)
                    self.emit(last)
                    if progress is not None:
                        progress(step, last)
                elif progress is not None:
                    progress(step, None)
        except KeyboardInterrupt:
            status = "interrupted"
            self.log("interrupted: metrics so far are kept; summary status 'interrupted'")
        self.write_summary(status, last)
        return status
