"""Heterogeneous quadratics with a known optimum (``dataset=quadratic``; ``convex.quadratic_problem``)."""

from __future__ import annotations

import torch

from compress_train.datasets.convex import ConvexProblem, quadratic_problem


def convex_problem(d, workers: int, dtype: torch.dtype) -> ConvexProblem:
    return quadratic_problem(d.dim, d.kappa, workers, d.seed, dtype=dtype)


CONVEX_MODELS = ("quadratic",)
IMPLEMENTATION = convex_problem
