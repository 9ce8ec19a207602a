"""Starting workers: in this process (``launcher=sim``) or as torchrun processes.

``compress-train`` is a rank-less parent: it resolves the config once and writes it to the run
directory as ``config.yaml``; torchrun's workers read that frozen file (Hydra would resolve
``${now:}`` again in every child). The worker entry point also runs alone under
``torchrun --nproc-per-node N -m compress_train.runner key=value ...``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from compress_train.compressors.registry import Registry

FROZEN = "config.yaml"
LAUNCHERS = Registry("compress_train.runner.launchers", "launcher.name")


def freeze(cfg: DictConfig, run_dir: Path) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / FROZEN
    path.write_text(OmegaConf.to_yaml(cfg, resolve=True))
    return path


def launch(cfg: DictConfig, run_dir: Path) -> dict[str, Any] | None:
    """Freeze the config into the run directory and start the workers with ``launcher.name``'s
    launcher (``runner/launchers/<name>.py``)."""
    freeze(cfg, run_dir)
    return LAUNCHERS.get(cfg.launcher.name)(cfg, run_dir)
