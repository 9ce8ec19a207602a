"""A consistent (interpolating) least-squares system (``dataset=lsq_interp``; ``convex.lsq_interp_problem``)."""

from __future__ import annotations

import torch

from compress_train.datasets.convex import ConvexProblem, lsq_interp_problem


def convex_problem(d, workers: int, dtype: torch.dtype) -> ConvexProblem:
    return lsq_interp_problem(d.samples, d.dim, workers, d.seed, dtype=dtype)


CONVEX_MODELS = ("least_squares",)
IMPLEMENTATION = convex_problem
