"""Structured-config schemas: Hydra checks types and rejects unknown keys at composition.

``RootSchema`` types the run's own keys (``seed``, ``workers``, ``train.*``, ...); ``conf/config.yaml``
extends it. Every option of a component group (``conf/algo/comp_ams.yaml`` ...) extends its own
schema ``schema/<group>/<option>``, generated here from the component itself, so a new component
needs no schema written by hand: its keys are the YAML's (anything else is an unknown key), typed by
the implementation's constructor annotations where they are plain (``float``, ``int``, ``bool``,
``str``, optional or not; un-annotated parameters such as ``lr``, which may be ``auto``, take any
value); every field may be null (the component's own ``check`` says which values it allows). Ranges and
cross-key rules live with the components (``check``), not here.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml
from hydra.core.config_store import ConfigStore

CONF = Path(__file__).resolve().parents[2] / "conf"
SCHEMA_GROUPS = ("algo", "compressor", "dataset", "model", "controller", "launcher", "logger")
PLAIN = (float, int, bool, str)


@dataclass
class TrainSchema:
    epochs: Optional[int] = 5
    max_steps: Optional[int] = None
    tol: Any = "auto"
    batch_size: int = 200
    log_every: int = 10
    eval_every: int = 100
    eval_batch_size: int = 1000
    grad_clip: Optional[float] = None
    lr_schedule: Any = None
    checkpoint_every: Any = "auto"
    keep_checkpoints: int = 2
    diverge_ratio: Optional[float] = 1000.0
    bn_stats: str = "broadcast"
    batched_workers: bool = False


@dataclass
class NetworkSchema:
    bandwidth_gbps: Optional[float] = None
    latency_us: Optional[float] = 0.0
    topology: Optional[str] = "ring"


@dataclass
class RootSchema:
    seed: int = 0
    scale: str = "ci"
    label: Optional[str] = None
    experiment_name: Optional[str] = None
    task: str = "network"
    workers: int = 1
    device: str = "auto"
    threads: Optional[int] = None
    precision: str = "float32"
    resume: Optional[str] = None
    train: TrainSchema = field(default_factory=TrainSchema)
    network: NetworkSchema = field(default_factory=NetworkSchema)
    # preset parameters that experiment presets interpolate from (scales.<scale>.*, ...)
    scales: Any = None
    problem_args: Any = None
    method_args: Any = None
    model_args: Any = None
    # the groups, each typed by its option's own schema
    dataset: Any = None
    model: Any = None
    algo: Any = None
    compressor: Any = None
    controller: Any = None
    launcher: Any = None
    logger: Any = None


def _plain(annotation: Any) -> Any:
    """``float``/``Optional[float]``/``float | None`` -> float; anything else -> None."""
    if annotation in PLAIN:
        return annotation
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        inner = args[0] if args[1] is type(None) else args[1]
        return inner if inner in PLAIN else None
    return None


def _annotations(implementation: Any) -> dict[str, Any]:
    target = implementation.__init__ if inspect.isclass(implementation) else implementation
    try:
        return typing.get_type_hints(target)
    except Exception:  # an annotation that does not resolve: fall back to the YAML's values
        return {}


def _field_type(key: str, hints: dict[str, Any]) -> Any:
    kind = _plain(hints.get(key))
    return Any if kind is None else Optional[kind]


def option_schema(group: str, option: str, values: dict[str, Any], implementation: Any) -> type:
    """The dataclass of one option: its YAML's keys, typed as the module docstring says."""
    hints = _annotations(implementation) if implementation is not None else {}
    fields = [
        (key, _field_type(key, hints), dataclasses.field(default=None))
        for key, value in values.items()
        if key != "defaults"
    ]
    return dataclasses.make_dataclass(f"{group}_{option}_schema", fields)


def _implementations(group: str):
    """The registry of a group, to read constructor annotations (None where there is none to read)."""
    if group == "algo":
        from compress_train.algorithms.registry import ALGORITHMS

        return ALGORITHMS
    if group == "compressor":
        from compress_train.compressors.registry import COMPRESSORS

        return COMPRESSORS
    if group == "model":
        from compress_train.runner.tasks.models import MODELS

        return MODELS
    if group == "controller":
        from compress_train.algorithms.registry import CONTROLLERS

        return CONTROLLERS
    return None


def register() -> None:
    """Store ``base_config`` and ``schema/<group>/<option>`` for every option file in the ConfigStore."""
    store = ConfigStore.instance()
    store.store(name="base_config", node=RootSchema)
    for group in SCHEMA_GROUPS:
        registry = _implementations(group)
        for path in sorted((CONF / group).glob("*.yaml")):
            values = yaml.safe_load(path.read_text()) or {}
            impl = registry.get(path.stem) if registry is not None and path.stem in registry else None
            store.store(group=f"schema/{group}", name=path.stem, node=option_schema(group, path.stem, values, impl))
