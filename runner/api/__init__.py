"""compress_train: the Python API, for notebooks and scripts.

    import compress_train
    summary = compress_train.run(["method=comp_ams/topk_ef_0.01", "train.max_steps=50"])
    rows = compress_train.load_runs(summary["run_dir"], per="row")  # one row per metrics row
    rows.plot(x="bits_up", y="train_loss")                          # loss against bits sent per worker
    runs = compress_train.load_runs("outputs/runs", per="run")       # one row per run, every run so far

- ``run(overrides, run_dir=None)``: one run of the ``compress-train`` config with these overrides,
  in this process (``compress_train._run``).
- ``load_runs(path, per="run"|"row")``: the DataFrame ``compress-report`` uses (``compress_train._load``),
  per run with each evaluation metric's final and best value.
- ``bits_to(rows, "test_acc>=0.95")``: per run, the bits per worker sent until the target was reached.
- ``by_method(runs)``: per method, the mean and std over its runs (seeds) of the final/best/bits columns.
- ``ddp_hook``: our compressors as a PyTorch DDP communication hook (``compress_train.runner.ddp_hook``).
- ``ConfigError``: what ``run`` raises for a bad override (one line per problem, naming the key).

This package is the folder ``runner/api/`` (pyproject maps it onto ``compress_train``); the rest of
the namespace (``compress_train.runner``, ``.algorithms``, ``.compressors``, ...) is the design
card's folders. Everything here is imported on first use, so ``import compress_train.compressors``
pulls in nothing else.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

# Large CPU tensors on transparent huge pages (torch's own switch, read at its first large allocation,
# PyTorch >= 2.2): a fresh 100 MB tensor then costs about 1.7 copies instead of 9 (4 KiB page faults),
# which is most of what a compressor's temporaries and decoded vectors cost on the CPU
# (docs/architecture.md §8). Numbers never change; THP_MEM_ALLOC_ENABLE=0 in the environment turns it off.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

# An editable install (pip install -e .) finds the namespace package compress_train.datasets (no
# __init__.py: tests/test_layout.py) through setuptools' path-hook placeholder, which setuptools
# puts in a namespace parent's __path__; this package is a regular one, so it adds it itself.
__path__ += [p for p in sys.path if p.startswith("__editable__.compress_train") and p.endswith(".__path_hook__")]

_EXPORTS = {
    "run": "compress_train._run",
    "load_runs": "compress_train._load",
    "bits_to": "compress_train._load",
    "by_method": "compress_train._load",
    "ddp_hook": "compress_train.runner.ddp_hook",
    "ConfigError": "compress_train.runner.config.check",
}
__all__ = ["ConfigError", "bits_to", "by_method", "ddp_hook", "load_runs", "run"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'compress_train' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
