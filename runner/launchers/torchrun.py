"""One process per worker under torch's own launcher (``launcher=torchrun``): the workers read
the frozen ``config.yaml`` (Hydra would resolve ``${now:}`` again in every child)."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from compress_train.runner.launch import FROZEN

log = logging.getLogger("compress_train")


class WorkersFailed(RuntimeError):
    """torchrun's workers exited with an error (their own messages are above it in the log)."""


def launch_torchrun(cfg: DictConfig, run_dir: Path) -> dict[str, Any] | None:
    """``python -m torch.distributed.run --standalone --nproc-per-node n -m compress_train.runner
    --config RUN_DIR/config.yaml``, with the run directory as the workers' working directory."""
    threads = cfg.threads or max(1, (os.cpu_count() or 1) // cfg.workers)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           "--nproc-per-node", str(cfg.workers), "--max-restarts", str(cfg.launcher.get("max_restarts", 0)),
           "-m", "compress_train.runner",
           "--config", str((run_dir / FROZEN).resolve())]
    log.info("launching: %s", " ".join(cmd))
    proc = subprocess.run(cmd, cwd=run_dir, env=env)
    summary_path = run_dir / "summary.json"
    if proc.returncode != 0:
        raise WorkersFailed(f"torchrun workers failed with exit code {proc.returncode} (their errors are printed "
                            f"above); outputs so far are in {run_dir}")
    return json.loads(summary_path.read_text()) if summary_path.exists() else None


IMPLEMENTATION = launch_torchrun
