"""DEF, detached error feedback (``def`` Alg. 1 + Eq. 11, baselines.md C3): gradients at the
detached point x - lambda e_i, evaluated at y = x - avg_i e_i (``algorithms/detached.py``)."""

from compress_train.algorithms.detached import DetachedErrorFeedback


class DEF(DetachedErrorFeedback):
    name = "def"
    evaluate_at = "average"


IMPLEMENTATION = DEF
