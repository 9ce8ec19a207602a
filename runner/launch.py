"""Starting workers: in this process (``launcher=sim``) or as torchrun processes.

``compress-train`` is a rank-less parent: it resolves the config once and writes it to the run
directory as ``config.yaml``; torchrun's workers read that frozen file (Hydra would resolve
``${now:}`` again in every child). The worker entry point also runs alone under
``torchrun --nproc-per-node N -m compress_train.runner key=value ...``.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from compress_train.algorithms.base import ParameterError
from compress_train.compressors.registry import Registry
from compress_train.datasets.errors import DataFileError
from compress_train.runner.metrics import OutputError
from compress_train.runner.run import FROZEN, check_before_writing, nothing_to_resume

log = logging.getLogger("compress_train")
LAUNCHERS = Registry("compress_train.runner.launchers", "launcher.name")


def freeze(cfg: DictConfig, run_dir: Path) -> Path:
    """Write the resolved config to ``RUN_DIR/config.yaml`` (OutputError naming the cause when it cannot)."""
    path = run_dir / FROZEN
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(OmegaConf.to_yaml(cfg, resolve=True))
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err.strerror or err}") from None
    return path


def launch(cfg: DictConfig, run_dir: Path) -> dict[str, Any] | None:
    """Check that this run may use ``run_dir`` (``run.check_before_writing``: a reused directory or a
    resume that would change the run stops before anything is written; a finished run with nothing
    to resume returns its summary untouched), freeze the config into the run directory and start the
    workers with ``launcher.name``'s launcher (``runner/launchers/<name>.py``)."""
    finished = check_before_writing(cfg, run_dir)
    if finished is not None:
        log.info(nothing_to_resume(run_dir, finished))
        return finished
    before = set(os.listdir(run_dir)) if run_dir.is_dir() else set()
    freeze(cfg, run_dir)
    try:
        return LAUNCHERS.get(cfg.launcher.name)(cfg, run_dir)
    except (DataFileError, ParameterError):
        if cfg.get("resume") is None:
            remove_rejected(run_dir, before)
        raise


HYDRA_FILES = {"config.yaml", "hydra.yaml", "overrides.yaml"}


def remove_rejected(run_dir: Path, before: set[str]) -> None:
    """A fresh run whose data or parameters were rejected before its first step leaves no run
    directory: what it wrote goes, and so does the directory when nothing else is left in it but
    Hydra's own ``.hydra/`` and job log."""
    for name in set(os.listdir(run_dir)) - before:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    left = set(os.listdir(run_dir))
    hydra = run_dir / ".hydra"
    hydra_only = not hydra.exists() or (hydra.is_dir() and set(os.listdir(hydra)) <= HYDRA_FILES)
    if hydra_only and all(n == ".hydra" or (n.endswith(".log") and (run_dir / n).is_file()) for n in left):
        shutil.rmtree(run_dir, ignore_errors=True)
