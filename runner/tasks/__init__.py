"""Tasks: what the trainer's one loop iterates over (``task`` = module stem, registered like every
extension point; ``runner/tasks/<name>.py`` defines ``IMPLEMENTATION``).

- ``network``: a classifier on an image or token dataset (the default);
- ``convex``: a convex model (``logreg``, ``least_squares``, ``quadratic``) with a known optimum;
- ``language_model``: a word-level LSTM language model (perplexity);
- ``recommendation``: NCF on (user, item) pairs (hit rate).

The config picks the task: a dataset declares the task that trains on it (``dataset.task``), and
a convex model's defaults set ``task: convex``. A task class has the interface of
``tasks/base.py``'s ``Task`` and a classmethod ``check(cfg) -> list[str]`` for its own keys.
"""

from __future__ import annotations

from compress_train.compressors.registry import Registry

TASKS = Registry("compress_train.runner.tasks", "task")


def select_task(cfg) -> type:
    return TASKS.get(cfg.task)
