"""DEF-A (``def`` Sec. 4): DEF's training, evaluated at the iterate x instead of y = x - avg_i e_i
(no extra allreduce). ``algorithms/detached.py``."""

from compress_train.algorithms.detached import DetachedErrorFeedback


class DEFA(DetachedErrorFeedback):
    name = "def_a"
    evaluate_at = "iterate"


IMPLEMENTATION = DEFA
