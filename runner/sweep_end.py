"""A Hydra callback: a sweep ends by printing its directory and the ``compress-report`` line for it."""
from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class SweepEnd(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = config.hydra.sweep.dir
        print(f"sweep written to {sweep_dir}\nreport it with:  compress-report {sweep_dir} --out {sweep_dir}/report",
              flush=True)
