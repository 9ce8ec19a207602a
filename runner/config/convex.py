"""Which configs are convex tasks, and the checks of their keys (before anything is built).

A convex task is chosen by the model: ``logreg`` and ``least_squares`` put their loss on a
dataset's samples (``libsvm``, two ``mnist`` classes, ``lsq_interp``), ``quadratic`` is the
objective of ``dataset=quadratic``. Messages follow config_check's template.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from compress_train.runner.tasks.data import DATASETS

# model.name -> its parameters; dataset.name -> the convex models it serves
CONVEX_MODELS: dict[str, tuple[str, ...]] = {"logreg": ("l2", "l2_over_L", "x0_offset"),
                                             "least_squares": ("l2", "l2_over_L", "x0_offset"),
                                             "quadratic": ("x0_offset",)}
PRECISIONS = ("float32", "float64")


def convex_datasets() -> dict[str, tuple[str, ...]]:
    """dataset.name -> the convex models it serves (a dataset module's ``CONVEX_MODELS``)."""
    return {name: DATASETS.module(name).CONVEX_MODELS for name in DATASETS.names()
            if hasattr(DATASETS.module(name), "CONVEX_MODELS")}


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
    params = {k: v for k, v in OmegaConf.to_container(cfg.model, resolve=True).items() if k != "name"}
    errors += [f"`model.{k}` is not a parameter of model {name!r} (it takes {sorted(CONVEX_MODELS[name])})."
               for k in params if k not in CONVEX_MODELS[name]]
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
        elif not Path(path).expanduser().is_file():
            errors.append(f"`dataset.path` must be an existing LIBSVM file, but '{path}' does not exist.")
        if d.get("max_samples") is not None:
            _int(errors, "dataset.max_samples", d.max_samples, 1)
    else:  # mnist: two digits
        classes = d.get("classes")
        if not (OmegaConf.is_list(classes) and len(classes) == 2 and len(set(classes)) == 2
                and all(isinstance(c, int) and 0 <= c <= 9 for c in classes)):
            errors.append(f"`dataset.classes` must be two different digits 0-9 (e.g. [4,9]) for model={model}, "
                          f"but is {classes!r}.")
    fr = d.get("feature_range")
    if fr is not None and not (OmegaConf.is_list(fr) and len(fr) == 2 and all(isinstance(v, (int, float)) for v in fr)
                               and fr[0] < fr[1]):
        errors.append(f"`dataset.feature_range` must be null or [low, high] with low < high, but is {fr!r}.")
    return errors


def check_network_keys(cfg: DictConfig) -> list[str]:
    """Keys that only convex models use, set on a network run."""
    errors: list[str] = []
    if cfg.precision != "float32":
        errors.append(f"`precision` must be 'float32' for model={cfg.model.name} (float64 is for convex models), "
                      f"but is {cfg.precision!r}.")
    for key in ("classes", "feature_range"):
        if cfg.dataset.get(key) is not None:
            errors.append(f"`dataset.{key}` is only used by convex models (model=logreg|least_squares), "
                          f"but is {cfg.dataset.get(key)!r} with model={cfg.model.name}.")
    return errors


def check_tol(value: Any) -> list[str]:
    if value in ("auto", None) or (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1):
        return []
    return [f"`train.tol` must be 'auto', null or a number in (0, 1), but is {value!r}."]
