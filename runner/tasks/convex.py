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
from pathlib import Path
from typing import Any, Callable, cast

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from compress_train.algorithms.base import Needs
from compress_train.algorithms.communicator import Communicator
from compress_train.datasets.convex import ConvexProblem, data_smoothness, least_squares_problem, logistic_problem
from compress_train.runner.tasks.base import Task
from compress_train.runner.tasks.data import DATASETS, WorkerStream, seek_streams, streams_state

PRECISIONS = {"float32": torch.float32, "float64": torch.float64}


# model.name -> its parameters; dataset.name -> the convex models it serves
CONVEX_MODELS: dict[str, tuple[str, ...]] = {
    "logreg": ("l2", "l2_over_L", "x0_offset"),
    "least_squares": ("l2", "l2_over_L", "x0_offset"),
    "quadratic": ("x0_offset",),
}


def convex_datasets() -> dict[str, tuple[str, ...]]:
    """dataset.name -> the convex models it serves (a dataset module's ``CONVEX_MODELS``)."""
    return {
        name: DATASETS.module(name).CONVEX_MODELS
        for name in DATASETS.names()
        if hasattr(DATASETS.module(name), "CONVEX_MODELS")
    }


def is_convex(cfg: DictConfig) -> bool:
    return cfg.model.name in CONVEX_MODELS


def _number(errors: list[str], key: str, value: Any, low: float, strict: bool = True) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (value > low if strict else value >= low)
    if not ok:
        errors.append(f"`{key}` must be a number {'>' if strict else '>='} {low}, but is {value!r}.")


def _int(errors: list[str], key: str, value: Any, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        errors.append(f"`{key}` must be an integer >= {low}, but is {value!r}.")


def check_model(cfg: DictConfig) -> list[str]:
    errors: list[str] = []
    name = cfg.model.name
    model = cast("dict[str, Any]", OmegaConf.to_container(cfg.model, resolve=True))  # a DictConfig gives a dict
    params = {k: v for k, v in model.items() if k != "name"}
    errors += [
        f"`model.{k}` is not a parameter of model {name!r} (it takes {sorted(CONVEX_MODELS[name])})."
        for k in params
        if k not in CONVEX_MODELS[name]
    ]
    if params.get("l2_over_L") is not None:
        _number(errors, "model.l2_over_L", params["l2_over_L"], 0.0)
    elif "l2" in params:
        _number(errors, "model.l2", params["l2"], 0.0, strict=name == "logreg")
    offset = params.get("x0_offset")
    if offset is not None and (not isinstance(offset, (int, float)) or isinstance(offset, bool)):
        errors.append(f"`model.x0_offset` must be null or a number, but is {offset!r}.")
    return errors


def check_dataset(cfg: DictConfig) -> list[str]:
    """The dataset keys of a convex task (``cfg.model`` is a convex model)."""
    errors: list[str] = []
    d, model = cfg.dataset, cfg.model.name
    served = convex_datasets()
    if d.name not in served or model not in served[d.name]:
        fits = sorted(n for n, ms in served.items() if model in ms)
        return [f"`dataset.name` must be one of {fits} for model={model}, but is {d.name!r}."]
    if d.name == "quadratic":
        _int(errors, "dataset.dim", d.get("dim"), 1)
        _number(errors, "dataset.kappa", d.get("kappa"), 1.0, strict=False)
        _int(errors, "dataset.seed", d.get("seed"), 0)
    elif d.name == "lsq_interp":
        _int(errors, "dataset.dim", d.get("dim"), 1)
        _int(errors, "dataset.seed", d.get("seed"), 0)
        samples = d.get("samples")
        if not isinstance(samples, int) or samples < max(d.get("dim") or 1, 1) * 1 or samples < cfg.workers:
            errors.append(f"`dataset.samples` must be an integer >= dataset.dim and >= workers, but is {samples!r}.")
    elif d.name == "libsvm":
        path = d.get("path")
        if not isinstance(path, str):
            errors.append(f"`dataset.path` must be the path of a LIBSVM file, but is {path!r}.")
        elif Path(path).expanduser().is_dir():
            errors.append(f"`dataset.path` must be a LIBSVM file, but '{path}' is a directory.")
        elif not Path(path).expanduser().is_file():
            errors.append(f"`dataset.path` must be an existing LIBSVM file, but '{path}' does not exist.")
        if d.get("max_samples") is not None:
            _int(errors, "dataset.max_samples", d.max_samples, 1)
        if not isinstance(d.get("zero_based", False), bool):
            errors.append(f"`dataset.zero_based` must be true or false, but is {d.get('zero_based')!r}.")
    else:  # mnist: two digits
        classes = d.get("classes")
        if not (
            OmegaConf.is_list(classes)
            and len(classes) == 2
            and len(set(classes)) == 2
            and all(isinstance(c, int) and 0 <= c <= 9 for c in classes)
        ):
            errors.append(
                f"`dataset.classes` must be two different digits 0-9 (e.g. [4,9]) for model={model}, "
                f"but is {classes!r}."
            )
    fr = d.get("feature_range")
    if fr is not None and not (
        OmegaConf.is_list(fr) and len(fr) == 2 and all(isinstance(v, (int, float)) for v in fr) and fr[0] < fr[1]
    ):
        errors.append(f"`dataset.feature_range` must be null or [low, high] with low < high, but is {fr!r}.")
    return errors


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
    supports_worker_points = True

    @classmethod
    def check(cls, cfg: DictConfig) -> list[str]:
        if not is_convex(cfg):
            fits = convex_datasets().get(cfg.dataset.name, CONVEX_MODELS)
            return [
                f"`model.name` must be one of {sorted(fits)} for dataset={cfg.dataset.name}, but is {cfg.model.name!r}."
            ]
        return check_model(cfg) + check_dataset(cfg)

    def __init__(
        self,
        cfg: DictConfig,
        comm: Communicator,
        log: Callable[[str], None],
        device: torch.device,
        needs: Needs = Needs(),
    ):
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
            self.streams = {w: WorkerStream(np.arange(p.shard_size(w)), batch, cfg.seed, w) for w in comm.local_workers}
            self.steps_per_epoch = max(1, p.shard_size(0) // batch)
            self.samples_per_step = cfg.workers * batch
        self.constants: dict[str, Any] = {
            **p.constants(),
            "grad0_norm": float(p.grad(self.params).norm()),
            "x0_dist": self.x0_dist,
        }
        self.summary_fields: dict[str, Any] = {
            "dataset": {"name": p.name, "description": p.description, "source": p.source},
            "problem": self.constants,
            "precision": cfg.precision,
            "tol": self.tol,
        }

    def local_gradients(
        self, step: int, point: torch.Tensor, points: dict[int, torch.Tensor] | None = None
    ) -> tuple[dict[int, torch.Tensor], list[float]]:
        grads, losses = {}, []
        for w in self.comm.local_workers:
            idx = None if self.full else torch.from_numpy(self.streams[w].next())
            loss, grads[w] = self.problem.worker_loss_grad(w, point if points is None else points[w], idx)
            losses.append(float(loss))
        return grads, losses

    def state_dict(self) -> dict[str, Any]:
        return {"streams": streams_state(self.streams)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        seek_streams(self.streams, state["streams"])

    def rel_dist(self) -> float:
        return float((self.params - self.x_star).norm()) / self.x0_dist if self.x0_dist > 0 else 0.0

    def row_metrics(self) -> dict[str, float]:
        f = self.problem.loss(self.params)
        dist = float((self.params - self.x_star).norm())
        return {
            "train_loss": f,
            "suboptimality": f - self.problem.f_star,
            "dist_to_opt": dist,
            "rel_dist": dist / self.x0_dist if self.x0_dist > 0 else 0.0,
        }

    def converged(self) -> bool:
        return self.tol is not None and self.rel_dist() <= self.tol

    def convergence_note(self) -> str:
        return f"||x - x*|| / ||x_0 - x*|| = {self.rel_dist():.3g} <= train.tol = {self.tol:g}"

    def evaluate(self) -> dict[str, float]:
        return self.row_metrics() if math.isfinite(self.rel_dist()) else {}


IMPLEMENTATION = ConvexTask
