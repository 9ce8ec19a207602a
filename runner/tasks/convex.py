"""A convex task with a known optimum (aiade's setting, and hard_threshold's logistic regression).

f(x) = (1/N) sum_i f_i(x), worker i holding f_i (``datasets/convex.py``). The parameter vector
is x itself, x_0 = 0 as in aiade's algorithms, in ``precision`` (float64 by default for these
models). Every metrics row carries ``dist_to_opt`` = ||x_k - x*||, ``rel_dist`` = that over
||x_0 - x*||, ``suboptimality`` = f(x_k) - f* and ``train_loss`` = f(x_k); step 0 (the starting
point) is logged too. The run stops with status ``converged`` once ``rel_dist`` <= ``train.tol``
(``auto``: 1e-10 in float64, 1e-5 in float32, before rounding noise dominates the iterates and
the error budgets of the increasing-accuracy methods fall below it).

Full-gradient algorithms (``Needs.full_gradient``) give each worker grad f_i at the point the
algorithm names; the others draw mini-batches of ``train.batch_size`` rows of the worker's
shard (the quadratic problem has no samples and is always full-gradient).
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch
from omegaconf import DictConfig

from compress_train.algorithms.base import Needs
from compress_train.algorithms.communicator import Communicator
from compress_train.datasets.convex import ConvexProblem, data_smoothness, least_squares_problem, logistic_problem
from compress_train.runner.tasks.data import DATASETS, WorkerStream
from compress_train.runner.tasks.base import Task

PRECISIONS = {"float32": torch.float32, "float64": torch.float64}


def resolve_tol(cfg: DictConfig) -> float | None:
    tol = cfg.train.get("tol", "auto")
    if tol == "auto":
        return 1e-10 if cfg.precision == "float64" else 1e-5
    return tol


def build_problem(cfg: DictConfig, log: Callable[[str], None]) -> ConvexProblem:
    """The dataset module's own problem (``convex_problem``: quadratic, lsq_interp), or the
    model's loss (logistic or least squares) on its samples (``convex_data``: libsvm, mnist)."""
    d, model, n = cfg.dataset, cfg.model, cfg.workers
    dtype = PRECISIONS[cfg.precision]
    module = DATASETS.module(d.name)
    if hasattr(module, "convex_problem"):
        return module.convex_problem(d, n, dtype)
    x, y, name, description, source = module.convex_data(d, log)
    build, kind = (logistic_problem, "logistic") if model.name == "logreg" else (least_squares_problem, "least_squares")
    l2 = model.l2
    if model.get("l2_over_L") is not None:  # hard_threshold Fig. 1: l2 = L / 1e4, L of the data term
        l2 = model.l2_over_L * data_smoothness(kind, x, n)
    return build(x, y, n, l2, name, description, source, dtype=dtype)


class ConvexTask(Task):
    log_initial = True
    supports_gradient_point = True

    def __init__(self, cfg: DictConfig, comm: Communicator, log: Callable[[str], None], device: torch.device,
                 needs: Needs = Needs()):
        self.cfg, self.comm = cfg, comm
        self.problem = p = build_problem(cfg, log)
        self.full = needs.full_gradient or p.kind == "quadratic"
        self.params = torch.zeros(p.dim, dtype=p.x_star.dtype)
        if cfg.model.get("x0_offset") is not None:  # hard_threshold Fig. 1 starts at x* + 0.005 (every coordinate)
            self.params = p.x_star.clone() + cfg.model.x0_offset
        self.layer_sizes, self.numel = [p.dim], p.dim
        self.x_star = p.x_star
        self.x0_dist = float((self.params - self.x_star).norm())
        self.tol = resolve_tol(cfg)
        batch = cfg.train.batch_size
        if self.full:
            self.streams, self.steps_per_epoch = {}, 1
            self.samples_per_step = sum(p.shard_size(i) for i in range(cfg.workers))
        else:
            self.streams = {w: WorkerStream(np.arange(p.shard_size(w)), batch, cfg.seed, w)
                            for w in comm.local_workers}
            self.steps_per_epoch = max(1, p.shard_size(0) // batch)
            self.samples_per_step = cfg.workers * batch
        self.constants: dict[str, Any] = {**p.constants(), "grad0_norm": float(p.grad(self.params).norm()),
                                          "x0_dist": self.x0_dist}
        self.summary_fields: dict[str, Any] = {
            "dataset": {"name": p.name, "description": p.description, "source": p.source},
            "problem": self.constants, "precision": cfg.precision, "tol": self.tol}

    def local_gradients(self, step: int, point: torch.Tensor) -> tuple[dict[int, torch.Tensor], list[float]]:
        grads, losses = {}, []
        for w in self.comm.local_workers:
            idx = None if self.full else torch.from_numpy(self.streams[w].next())
            loss, grads[w] = self.problem.worker_loss_grad(w, point, idx)
            losses.append(float(loss))
        return grads, losses

    def rel_dist(self) -> float:
        return float((self.params - self.x_star).norm()) / self.x0_dist if self.x0_dist > 0 else 0.0

    def row_metrics(self) -> dict[str, float]:
        f = self.problem.loss(self.params)
        dist = float((self.params - self.x_star).norm())
        return {"train_loss": f, "suboptimality": f - self.problem.f_star, "dist_to_opt": dist,
                "rel_dist": dist / self.x0_dist if self.x0_dist > 0 else 0.0}

    def converged(self) -> bool:
        return self.tol is not None and self.rel_dist() <= self.tol

    def convergence_note(self) -> str:
        return f"||x - x*|| / ||x_0 - x*|| = {self.rel_dist():.3g} <= train.tol = {self.tol:g}"

    def evaluate(self) -> dict[str, float]:
        return self.row_metrics() if math.isfinite(self.rel_dist()) else {}


IMPLEMENTATION = ConvexTask
