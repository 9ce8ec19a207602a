"""All workers simulated inside this process (``launcher=sim``): deterministic, the numbers
torchrun reproduces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from compress_train.algorithms.communicator import SimCommunicator
from compress_train.runner.run import run_training


def launch_sim(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    return run_training(cfg, SimCommunicator(cfg.workers), run_dir)


IMPLEMENTATION = launch_sim
