"""Starting workers: in this process (``launcher=sim``) or as torchrun processes.

``compress-train`` is a rank-less parent: it resolves the config once and writes it to the run
directory as ``config.yaml``; torchrun's workers read that frozen file (Hydra would resolve
``${now:}`` again in every child). The worker entry point also runs alone under
``torchrun --nproc-per-node N -m compress_train.runner key=value ...``.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from compress_train.algorithms.communicator import SimCommunicator
from compress_train.runner.run import run_training

log = logging.getLogger("compress_train")
FROZEN = "config.yaml"


class WorkersFailed(RuntimeError):
    """torchrun's workers exited with an error (their own messages are above it in the log)."""


def freeze(cfg: DictConfig, run_dir: Path) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / FROZEN
    path.write_text(OmegaConf.to_yaml(cfg, resolve=True))
    return path


def launch(cfg: DictConfig, run_dir: Path) -> dict[str, Any] | None:
    freeze(cfg, run_dir)
    if cfg.launcher.name == "sim":
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        return run_training(cfg, SimCommunicator(cfg.workers), run_dir)
    return launch_torchrun(cfg, run_dir)


def launch_torchrun(cfg: DictConfig, run_dir: Path) -> dict[str, Any] | None:
    """``python -m torch.distributed.run --standalone --nproc-per-node n -m compress_train.runner
    --config RUN_DIR/config.yaml``, with the run directory as the workers' working directory."""
    threads = cfg.threads or max(1, (os.cpu_count() or 1) // cfg.workers)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           "--nproc-per-node", str(cfg.workers), "-m", "compress_train.runner",
           "--config", str((run_dir / FROZEN).resolve())]
    log.info("launching: %s", " ".join(cmd))
    proc = subprocess.run(cmd, cwd=run_dir, env=env)
    summary_path = run_dir / "summary.json"
    if proc.returncode != 0:
        raise WorkersFailed(f"torchrun workers failed with exit code {proc.returncode} (their errors are printed "
                            f"above); outputs so far are in {run_dir}")
    return json.loads(summary_path.read_text()) if summary_path.exists() else None
