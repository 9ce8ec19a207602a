"""What every task gives the trainer, with the defaults of a task that trains a network.

A task holds the flat parameter vector the algorithm updates (``params``, ``layer_sizes``,
``numel``), gives each local worker its gradient (``local_gradients``), evaluates
(``evaluate``) and says what was trained (``summary_fields``). The defaults below fit a
network: nothing to log beyond the loop's own metrics, no convergence test, no model buffers
to share; ``NetworkTask`` (BatchNorm buffers) and ``ConvexTask`` (distance to x*, a tolerance)
override them.
"""
from __future__ import annotations

from typing import Any


class Task:
    log_initial = False                       # log a row for the starting point (step 0)
    constants: dict[str, Any] | None = None   # a convex problem's L, mu, ... for theory-driven methods

    def after_step(self) -> None:
        """After the algorithm's update: share what is not in the parameters (none by default)."""

    def row_metrics(self) -> dict[str, float]:
        return {}

    def converged(self) -> bool:
        return False

    def convergence_note(self) -> str:
        return ""
