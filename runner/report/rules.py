"""The rules every report shares, in one place: when a run failed to train, and how a linear
convergence rate is fitted. ``claims``, the paper reports and ``compress-report`` import them from here."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

CHANCE_FACTOR = 1.5  # a final accuracy below 1.5 / classes (15 % on 10 classes) is "at chance"
FAILED_TO_TRAIN = (
    'A run counts as failed to train (the one rule of every report: the `def` tables\' "diverge" too) '
    "when its status is `diverged` (the runner's rule: a non-finite loss or parameters, or a loss far "
    "above the first step's) or when its final test accuracy is at chance, below 1.5 / classes (15 % for "
    '10 classes). The `def` tables count failed runs apart ("k/n diverge") instead of averaging them; a '
    "claim's comparison uses every run's final value as logged (a run that stopped before its first "
    "evaluation has none and is left out of n); a diverged run whose last row lacks the metric (it "
    "diverged between two evaluations) counts at the failed model's value: chance accuracy (1 / classes), "
    "an infinite loss or perplexity, never its last evaluation before the failure."
)
TRANSIENT = 1e-2  # a rate is fitted from the first row at or below this relative distance (when 5+ rows follow)


def at_chance(acc_fraction: float | None, classes: int | None) -> bool:
    """A final test accuracy (a fraction) below ``CHANCE_FACTOR`` / classes."""
    return isinstance(acc_fraction, (int, float)) and acc_fraction < CHANCE_FACTOR / (classes or 10)


def failed_to_train(run: dict[str, Any]) -> bool:
    """``FAILED_TO_TRAIN`` for a run record or a summary.json: status diverged, or a final test
    accuracy (``final.test_acc``) at chance for its ``num_classes``."""
    return run.get("status") == "diverged" or at_chance(
        (run.get("final") or {}).get("test_acc"), run.get("num_classes")
    )


def fitted_rate(steps: np.ndarray, rel: np.ndarray) -> float:
    """The linear rate per iteration of a relative distance: exp of the least-squares slope of its log
    against the step, past the transient; NaN with fewer than two usable rows."""
    ok = np.isfinite(rel) & (rel > 0)
    steps, rel = steps[ok], rel[ok]
    past = np.nonzero(rel <= TRANSIENT)[0]
    if len(past) and len(steps) - past[0] >= 5:
        steps, rel = steps[past[0] :], rel[past[0] :]
    if len(steps) < 2 or steps[-1] == steps[0]:
        return math.nan
    return float(np.exp(np.polyfit(steps, np.log(rel), 1)[0]))
