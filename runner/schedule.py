"""Learning-rate schedules by epoch (the trainer sets ``algo.lr`` before every step).

``train.lr_schedule`` (null = constant): linear warm-up from the base lr to ``warmup_factor`` times
it over ``warmup_epochs``, then a step decay by ``gamma`` at each of ``milestones`` (epochs).
hard_threshold's CIFAR runs (the authors' settings): base 0.1, x16 over 5 epochs, /10 at 150 and 250.
"""
from __future__ import annotations

from typing import Any

KEYS = ("warmup_epochs", "warmup_factor", "milestones", "gamma")


def lr_at(base: float, epoch: float, schedule: dict[str, Any]) -> float:
    """The lr at (fractional) ``epoch``."""
    warm, factor = schedule.get("warmup_epochs", 0) or 0, schedule.get("warmup_factor", 1.0)
    scale = factor if warm == 0 or epoch >= warm else 1 + (factor - 1) * epoch / warm
    decays = sum(1 for m in schedule.get("milestones") or () if epoch >= m)
    return base * scale * schedule.get("gamma", 0.1) ** decays


def check_schedule(schedule: Any) -> list[str]:
    if schedule is None:
        return []
    if not isinstance(schedule, dict):
        return [f"`train.lr_schedule` must be null or a mapping with keys {list(KEYS)}, but is {schedule!r}."]
    errors = [f"`train.lr_schedule.{k}` is not a schedule key (allowed: {list(KEYS)})." for k in schedule if k not in KEYS]
    warm, factor, gamma = schedule.get("warmup_epochs", 0), schedule.get("warmup_factor", 1.0), schedule.get("gamma", 0.1)
    if not isinstance(warm, (int, float)) or warm < 0:
        errors.append(f"`train.lr_schedule.warmup_epochs` must be a number >= 0, but is {warm!r}.")
    if not isinstance(factor, (int, float)) or factor <= 0:
        errors.append(f"`train.lr_schedule.warmup_factor` must be a number > 0, but is {factor!r}.")
    if not isinstance(gamma, (int, float)) or not 0 < gamma <= 1:
        errors.append(f"`train.lr_schedule.gamma` must be in (0, 1], but is {gamma!r}.")
    milestones = schedule.get("milestones") or []
    if not isinstance(milestones, list) or not all(isinstance(m, (int, float)) for m in milestones):
        errors.append(f"`train.lr_schedule.milestones` must be a list of epochs, but is {milestones!r}.")
    return errors
