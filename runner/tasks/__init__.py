"""Which task a config trains: the trainer's loop is one, what it loops over differs.

- ``ConvexTask``: a convex model (``logreg``, ``least_squares``, ``quadratic``) with a known optimum;
- a task registered below by dataset name, for data that is not (image, label) pairs: a word-level
  language model (perplexity), a recommender (hit rate);
- ``NetworkTask`` otherwise: a classifier on an image or token dataset.

A task class has the interface of ``NetworkTask`` and a classmethod ``check(cfg) -> list[str]``
for its own keys. Registered tasks are imported only when used.
"""
from __future__ import annotations

import importlib

from omegaconf import DictConfig

from compress_train.runner.config.convex import is_convex

# dataset.name -> "module:Class" of the task that trains on it
TASK_DATASETS: dict[str, str] = {"ptb": "compress_train.runner.tasks.language_model:LanguageModelTask", "wikitext2": "compress_train.runner.tasks.language_model:LanguageModelTask"}
TASK_DATASETS["movielens"] = "compress_train.runner.tasks.recommendation:RecommendationTask"


def registered(name: str) -> type | None:
    target = TASK_DATASETS.get(name)
    if target is None:
        return None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def select_task(cfg: DictConfig) -> type:
    if is_convex(cfg):
        from compress_train.runner.tasks.convex import ConvexTask
        return ConvexTask
    task = registered(cfg.dataset.name)
    if task is not None:
        return task
    from compress_train.runner.tasks.network import NetworkTask
    return NetworkTask
