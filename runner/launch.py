"""Starting workers: in this process (``launcher=sim``) or as torchrun processes.

``compress-train`` is a rank-less parent: it resolves the config once and writes it to the run
directory as ``config.yaml``; torchrun's workers read that frozen file (Hydra would resolve
``${now:}`` again in every child). The worker entry point also runs alone under
``torchrun --nproc-per-node N -m compress_train.runner key=value ...``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from compress_train.compressors.registry import Registry
from compress_train.runner.run import FROZEN, check_before_writing, nothing_to_resume

log = logging.getLogger("compress_train")
LAUNCHERS = Registry("compress_train.runner.launchers", "launcher.name")


def freeze(cfg: DictConfig, run_dir: Path) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / FROZEN
    path.write_text(OmegaConf.to_yaml(cfg, resolve=True))
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
    freeze(cfg, run_dir)
    return LAUNCHERS.get(cfg.launcher.name)(cfg, run_dir)
