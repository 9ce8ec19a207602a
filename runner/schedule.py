"""Learning-rate schedules by epoch (the trainer sets ``algo.lr`` before every step).

``train.lr_schedule`` (null = constant): linear warm-up from the base lr to ``factor`` times it over
``warmup_epochs``, then a step decay by ``gamma`` at each of ``milestones`` (epochs). The factor is
``warmup_factor``, or, with ``base_batch`` and ``global_batch``, the linear scaling rule
global_batch / base_batch (Goyal et al., arXiv 1706.02677): the base lr is tuned for ``base_batch``
samples per step and the run takes ``global_batch`` (workers x per-worker batch; presets interpolate
it, so changing ``workers`` or ``train.batch_size`` changes the factor).

hard_threshold's networks (the authors' ``cnn-lstm/run.py``, sands-lab/rethinking-sparsification):
``optimizer_scale_lr_with_factor = (batch / 128) * n_workers`` for the CIFAR networks and
``(batch / 64) * n_workers`` for the WikiText-2 LSTM, reached over 5 warm-up epochs: x16 at their
8 workers x 256 (CNN) and 8 x 128 (LSTM).
"""

from __future__ import annotations

from typing import Any

KEYS = ("warmup_epochs", "warmup_factor", "base_batch", "global_batch", "milestones", "gamma")


def warmup_factor(schedule: dict[str, Any]) -> float:
    """The factor the warm-up reaches: global_batch / base_batch when given, else ``warmup_factor``."""
    if schedule.get("base_batch") is not None:
        return float(schedule["global_batch"]) / float(schedule["base_batch"])
    return schedule.get("warmup_factor", 1.0)


def lr_at(base: float, epoch: float, schedule: dict[str, Any]) -> float:
    """The lr at (fractional) ``epoch``."""
    warm, factor = schedule.get("warmup_epochs", 0) or 0, warmup_factor(schedule)
    scale = factor if warm == 0 or epoch >= warm else 1 + (factor - 1) * epoch / warm
    decays = sum(1 for m in schedule.get("milestones") or () if epoch >= m)
    return base * scale * schedule.get("gamma", 0.1) ** decays


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def check_schedule(schedule: Any) -> list[str]:
    if schedule is None:
        return []
    if not isinstance(schedule, dict):
        return [f"`train.lr_schedule` must be null or a mapping with keys {list(KEYS)}, but is {schedule!r}."]
    errors = [
        f"`train.lr_schedule.{k}` is not a schedule key (allowed: {list(KEYS)})." for k in schedule if k not in KEYS
    ]
    warm, factor, gamma = (
        schedule.get("warmup_epochs", 0),
        schedule.get("warmup_factor", 1.0),
        schedule.get("gamma", 0.1),
    )
    if not isinstance(warm, (int, float)) or warm < 0:
        errors.append(f"`train.lr_schedule.warmup_epochs` must be a number >= 0, but is {warm!r}.")
    if not isinstance(factor, (int, float)) or factor <= 0:
        errors.append(f"`train.lr_schedule.warmup_factor` must be a number > 0, but is {factor!r}.")
    base, total = schedule.get("base_batch"), schedule.get("global_batch")
    if base is not None or total is not None:
        if "warmup_factor" in schedule:
            errors.append(
                "`train.lr_schedule.warmup_factor` must be left out when `base_batch` and `global_batch` "
                "set the factor (global_batch / base_batch)."
            )
        for key, value in (("base_batch", base), ("global_batch", total)):
            if not _positive(value):
                errors.append(
                    f"`train.lr_schedule.{key}` must be a number > 0 (the warm-up factor is "
                    f"global_batch / base_batch; give both), but is {value!r}."
                )
    if not isinstance(gamma, (int, float)) or not 0 < gamma <= 1:
        errors.append(f"`train.lr_schedule.gamma` must be in (0, 1], but is {gamma!r}.")
    milestones = schedule.get("milestones") or []
    if not isinstance(milestones, list) or not all(isinstance(m, (int, float)) for m in milestones):
        errors.append(f"`train.lr_schedule.milestones` must be a list of epochs, but is {milestones!r}.")
    return errors
