"""What every task gives the trainer, with the defaults of a task that trains a network.

A task is built as ``Task(cfg, comm, log, device, needs)`` where ``needs`` is the algorithm's
declaration (``algorithms/base.py``'s ``Needs``). It holds the flat parameter vector the
algorithm updates (``params``, ``layer_sizes``, ``numel``), gives each local worker its gradient
(``local_gradients``), evaluates (``evaluate``), says what was trained (``summary_fields``) and
builds the algorithm's typed ``context``. The defaults below fit a network: gradients only at
the iterate, no problem constants, nothing to log beyond the loop's own metrics, no convergence
test, no model buffers to share.
"""
from __future__ import annotations

from typing import Any

from compress_train.algorithms.base import AlgorithmContext, Needs, ParameterError


class Task:
    log_initial = False                       # log a row for the starting point (step 0)
    supports_gradient_point = False           # can evaluate gradients away from the iterate
    constants: dict[str, Any] | None = None   # a convex problem's L, mu, ... for theory-driven methods
    decay_mask = None                         # 0 on normalisation layers, where the task knows them

    def context(self, needs: Needs, algo_name: str) -> AlgorithmContext:
        """The algorithm's view of this task; a need the task cannot meet stops the run."""
        if needs.gradient_point and not self.supports_gradient_point:
            raise ParameterError(f"algo={algo_name} evaluates gradients away from the iterate, which only "
                                 "convex models support (model=logreg|least_squares|quadratic).")
        return AlgorithmContext(self.params, list(self.layer_sizes), problem=self.constants,
                                decay_mask=self.decay_mask)

    def after_step(self) -> None:
        """After the algorithm's update: share what is not in the parameters (none by default)."""

    def row_metrics(self) -> dict[str, float]:
        return {}

    def converged(self) -> bool:
        return False

    def convergence_note(self) -> str:
        return ""
