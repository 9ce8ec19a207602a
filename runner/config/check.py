"""Validate a composed config before anything trains; report every problem at once.

Messages follow one template (style.md): "`key` must be ..., but is VALUE." so a user sees the
key, the value and what is allowed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

from omegaconf import DictConfig, OmegaConf

from compress_train.algorithms import registry as algorithms
from compress_train.algorithms.base import Algorithm, Needs
from compress_train.algorithms.registry import CONTROLLERS
from compress_train.compressors import registry as compressors
from compress_train.compressors.scope import SCOPES
from compress_train.datasets.partition import SCHEMES
from compress_train.runner import network_model
from compress_train.runner.schedule import check_schedule
from compress_train.runner.tasks import TASKS
from compress_train.runner.tasks.convex import CONVEX_MODELS
from compress_train.runner.tasks.data import DATASETS

PRECISIONS = ("float32", "float64")


class ConfigError(ValueError):
    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("invalid configuration:\n  " + "\n  ".join(errors))


def _int(errors: list[str], key: str, value: Any, minimum: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        what = f"an integer >= {minimum}" + (" or null" if allow_none else "")
        errors.append(f"`{key}` must be {what}, but is {value!r}.")


def _choice(errors: list[str], key: str, value: Any, allowed) -> bool:
    if value not in allowed:
        errors.append(f"`{key}` must be one of {list(allowed)}, but is {value!r}.")
        return False
    return True


def qualify(section: str, message: str) -> str:
    """A component's message names its own keys (`lr`); the runner says where they live (`algo.lr`)."""
    return re.sub(r"(?<!`)`([A-Za-z_][A-Za-z0-9_]*)`(?!`)", lambda m: f"`{section}.{m.group(1)}`", message)


def component_params(section: DictConfig | dict, drop: tuple[str, ...] = ("name",)) -> dict[str, Any]:
    data = (
        cast("dict[str, Any]", OmegaConf.to_container(section, resolve=True))  # a DictConfig gives a dict
        if isinstance(section, DictConfig)
        else dict(section)
    )
    return {k: v for k, v in data.items() if k not in drop and k != "defaults"}  # defaults: a raw YAML's list


BN_STATS = ("broadcast", "average")


SCALES = ("ci", "paper")  # what ``scale`` may be without an experiment preset (which defines its own)


def check_scale(cfg: DictConfig) -> list[str]:
    """``scale`` names one of the experiment preset's ``scales`` (or, without a preset, ci | paper)."""
    scales = cfg.get("scales")
    allowed = [str(k) for k in scales.keys()] if isinstance(scales, DictConfig) else list(SCALES)
    if cfg.get("scale") in allowed:
        return []
    where = (
        f"the scales experiment={cfg.get('experiment_name')} defines"
        if isinstance(scales, DictConfig)
        else ("it only selects an experiment preset's settings")
    )
    return [f"`scale` must be one of {allowed} ({where}), but is {cfg.get('scale')!r}."]


def check_milestones(schedule: Any) -> list[str]:
    """Step-decay milestones in increasing order (a decreasing list would decay at the wrong epochs)."""
    milestones = schedule.get("milestones") if isinstance(schedule, dict) else None
    if not isinstance(milestones, list) or not all(isinstance(m, (int, float)) for m in milestones):
        return []  # check_schedule reports a malformed list
    if any(b <= a for a, b in zip(milestones, milestones[1:])):
        return [f"`train.lr_schedule.milestones` must be strictly increasing epochs, but is {milestones!r}."]
    return []


def check_config(cfg: DictConfig) -> None:
    """Raise ConfigError listing every invalid value in ``cfg``."""
    scale_errors = check_scale(cfg)
    if scale_errors:  # a preset's values interpolate ${scales.${scale}...}: nothing else resolves
        raise ConfigError(scale_errors)
    errors: list[str] = []
    _int(errors, "seed", cfg.seed, 0)
    _int(errors, "workers", cfg.workers, 1)
    _choice(errors, "device", cfg.device, ("auto", "cpu", "cuda"))
    _int(errors, "threads", cfg.threads, 1, allow_none=True)
    if cfg.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            errors.append("`device` is 'cuda', but no CUDA device is available here; use device=auto or cpu.")
    t = cfg.train
    _int(errors, "train.epochs", t.epochs, 1, allow_none=True)
    _int(errors, "train.max_steps", t.max_steps, 1, allow_none=True)
    if t.epochs is None and t.max_steps is None:
        errors.append("`train.epochs` and `train.max_steps` are both null: set at least one.")
    errors += check_tol(t.get("tol", "auto"))
    clip = t.get("grad_clip")
    if clip is not None and (not isinstance(clip, (int, float)) or isinstance(clip, bool) or clip <= 0):
        errors.append(f"`train.grad_clip` must be null or a number > 0, but is {clip!r}.")
    _choice(errors, "precision", cfg.get("precision", "float32"), PRECISIONS)
    for key in ("batch_size", "log_every", "eval_every", "eval_batch_size"):
        _int(errors, f"train.{key}", t[key], 1)
    _int(errors, "train.keep_checkpoints", t.keep_checkpoints, 0)  # 0: none once the run has finished
    every = t.checkpoint_every
    if every not in ("auto", None) and (not isinstance(every, int) or isinstance(every, bool) or every < 1):
        errors.append(f"`train.checkpoint_every` must be 'auto', null or an integer >= 1, but is {every!r}.")
    if t.diverge_ratio is not None and not t.diverge_ratio > 1:
        errors.append(f"`train.diverge_ratio` must be null or a number > 1, but is {t.diverge_ratio!r}.")
    _choice(errors, "train.bn_stats", t.get("bn_stats", "broadcast"), BN_STATS)
    errors += network_model.check(cfg.get("network"))

    d = cfg.dataset
    _choice(errors, "dataset.name", d.name, DATASETS.names())
    if _choice(errors, "dataset.partition", d.partition, SCHEMES) and d.partition == "dirichlet":
        if not isinstance(d.alpha, (int, float)) or d.alpha <= 0:
            errors.append(f"`dataset.alpha` must be a number > 0, but is {d.alpha!r}.")
    if d.root is not None and not isinstance(d.root, str):
        errors.append(f"`dataset.root` must be a directory path or null, but is {d.root!r}.")
    elif d.root is not None and not Path(d.root).expanduser().exists():
        errors.append(f"`dataset.root` must be an existing directory (or data file), but '{d.root}' does not exist.")

    task = TASKS.get(cfg.task) if cfg.task in TASKS else None
    if task is None:
        errors.append(f"`task` must be one of {TASKS.names()}, but is {cfg.task!r}.")
    else:
        errors += task.check(cfg)
    convex_model = cfg.task == "convex"

    algo_cls: type[Algorithm] | None = None
    if _choice(errors, "algo.name", cfg.algo.name, algorithms.available()):
        algo_cls = cast("type[Algorithm]", algorithms.get(cfg.algo.name))
        errors += [qualify("algo", e) for e in algo_cls.check(component_params(cfg.algo))]
        needs = algo_cls.needs
        if needs.problem == "required" and not convex_model:
            errors.append(
                f"`model.name` must be a convex model {sorted(CONVEX_MODELS)} for "
                f"algo={algo_cls.name} (its step sizes come from L and mu), but is {cfg.model.name!r}."
            )
        required = needs.compressor_name
        if required and cfg.compressor.name != required:
            errors.append(
                f"`compressor.name` must be {required!r} for algo={algo_cls.name}, but is {cfg.compressor.name!r}."
            )
        elif required:
            errors += [
                f"`compressor.{k}` must be {v!r} for algo={algo_cls.name}, but is {cfg.compressor.get(k)!r}."
                for k, v in needs.compressor_params.items()
                if cfg.compressor.get(k) not in (v, "auto")
            ]
        if needs.gradient_point and task is not None and not task.supports_gradient_point:
            errors.append(
                f"`model.name` must be a convex model {sorted(CONVEX_MODELS)} for algo={algo_cls.name} "
                f"(it evaluates gradients away from the iterate), but is {cfg.model.name!r}."
            )
    if algo_cls is None or algo_cls.needs.compressor:
        errors += check_compressor(cfg.compressor, algo_cls.needs if algo_cls else None)

    schedule = t.get("lr_schedule")
    plain_schedule = OmegaConf.to_container(schedule) if isinstance(schedule, DictConfig) else schedule
    errors += check_schedule(plain_schedule)
    errors += check_milestones(plain_schedule)
    if t.get("lr_schedule") is not None and algo_cls is not None and algo_cls.needs.problem == "required":
        errors.append(f"`train.lr_schedule` must be null for algo={algo_cls.name}: its step size is the theory's.")
    errors += check_controller(cfg)
    if _choice(errors, "launcher.name", cfg.launcher.name, ("sim", "torchrun")) and cfg.launcher.name == "torchrun":
        _choice(errors, "launcher.backend", cfg.launcher.backend, ("auto", "gloo", "nccl"))
        errors += check_nodes(cfg)
    if _choice(errors, "logger.name", cfg.logger.name, ("jsonl", "wandb")) and cfg.logger.name == "wandb":
        _choice(errors, "logger.mode", cfg.logger.mode, ("auto", "online", "offline", "disabled"))
    if errors:
        raise ConfigError(errors)


ENDPOINT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")  # HOST:PORT, [IPv6]:PORT


def check_nodes(cfg: DictConfig) -> list[str]:
    """Multi-node torchrun: ``launcher.nnodes`` nodes, this one ``launcher.node_rank``, meeting at
    ``launcher.rdzv_endpoint``; ``workers`` (the world size) split evenly over the nodes."""
    errors: list[str] = []
    launcher = cfg.launcher
    nnodes, rank, endpoint = launcher.get("nnodes", 1), launcher.get("node_rank", 0), launcher.get("rdzv_endpoint")
    _int(errors, "launcher.nnodes", nnodes, 1)
    _int(errors, "launcher.node_rank", rank, 0)
    if errors:
        return errors
    if rank >= nnodes:
        errors.append(f"`launcher.node_rank` must be below `launcher.nnodes` ({nnodes}), but is {rank!r}.")
    if nnodes > 1:
        match = ENDPOINT.match(str(endpoint)) if endpoint is not None else None
        if match is None or not 0 < int(match.group(2)) < 65536:
            errors.append(
                f"`launcher.rdzv_endpoint` must be HOST:PORT (node 0's address, port 1-65535) when "
                f"`launcher.nnodes` > 1, but is {endpoint!r}."
            )
        if isinstance(cfg.workers, int) and cfg.workers % nnodes:
            errors.append(
                f"`workers` must be a multiple of `launcher.nnodes` ({nnodes}): it is the world size, "
                f"workers / nnodes processes per node, but is {cfg.workers!r}."
            )
    return errors


RULE_KEYS = ("lam_rule", "kmin_ratio")  # resolved by the runner, not passed to the compressor
LAM_RULES = ("inv_sqrt_kmin",)


def compressor_params(section: DictConfig, numel: int | None = None, needs: Needs | None = None) -> dict[str, Any]:
    """The compressor's constructor arguments. A value ``auto`` takes the algorithm's required value
    (``Needs.compressor_params``: IADE-SGD's stochastic quantizer) or else the compressor's default.
    ``lam_rule: inv_sqrt_kmin`` (``hard_threshold`` Table 1) sets lam = 1/(2 sqrt(k_min)) with
    k_min = kmin_ratio * d, once the model's d is known."""
    params = component_params(section, ("name", "scope"))
    rule, ratio = params.pop("lam_rule", None), params.pop("kmin_ratio", None)
    required = needs.compressor_params if needs is not None else {}
    for key in [k for k, v in params.items() if v == "auto"]:
        if key in required:
            params[key] = required[key]
        else:
            del params[key]
    if rule == "inv_sqrt_kmin" and numel is not None:
        params["lam"] = 1 / (2 * (ratio * numel) ** 0.5)
    return params


def check_controller(cfg: DictConfig) -> list[str]:
    c = cfg.get("controller") or {"name": "none"}
    errors: list[str] = []
    if _choice(errors, "controller.name", c.get("name"), CONTROLLERS.names()):
        params = component_params(c)
        compressor = {"name": cfg.compressor.name, "scope": cfg.compressor.get("scope")}
        errors += [qualify("controller", e) for e in CONTROLLERS.get(str(c.get("name"))).check(params, compressor)]
    return errors


def check_compressor(section: DictConfig, needs: Needs | None = None) -> list[str]:
    errors: list[str] = []
    if not _choice(errors, "compressor.name", section.name, compressors.available()):
        return errors
    _choice(errors, "compressor.scope", section.get("scope"), SCOPES)
    try:
        built = compressors.build(section.name, compressor_params(section, None, needs))
        errors += [qualify("compressor", e) for e in built.check()]
        rule = section.get("lam_rule")
        if rule is not None and rule not in LAM_RULES:
            errors.append(f"`compressor.lam_rule` must be null or one of {list(LAM_RULES)}, but is {rule!r}.")
        ratio = section.get("kmin_ratio")
        if rule is not None and not (isinstance(ratio, (int, float)) and 0 < ratio <= 1):
            errors.append(f"`compressor.kmin_ratio` must be in (0, 1], but is {ratio!r}.")
    except ValueError as err:
        errors.append(str(err))
    return errors


def check_tol(value: Any) -> list[str]:
    if value in ("auto", None) or (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1):
        return []
    return [f"`train.tol` must be 'auto', null or a number in (0, 1), but is {value!r}."]
