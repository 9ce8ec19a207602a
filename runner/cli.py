"""``compress-train``: compose the Hydra config, validate it, and launch the run.

    compress-train algo=comp_ams compressor=topk
    compress-train -m compressor=topk,blocksign seed=1,2,3
    compress-train launcher=torchrun workers=2

Bad values stop before training with one line per problem (exit code 2). A diverged run is a
result: status ``diverged`` in summary.json, exit code 0, and a sweep goes on.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from compress_train.algorithms.base import ParameterError
from compress_train.datasets.errors import DataFileError
from compress_train.runner.config.check import ConfigError, check_config
from compress_train.runner.launch import launch
from compress_train.runner.launchers.torchrun import WorkersFailed

log = logging.getLogger("compress_train")


class UserError(SystemExit):
    """Ends a run with a clear message and exit code 2, without a traceback."""

    def __init__(self, message: str):
        print(f"error: {message}", file=sys.stderr)
        super().__init__(2)


@hydra.main(version_base="1.3", config_path="pkg://compress_train.conf", config_name="config")
def hydra_main(cfg: DictConfig) -> None:
    try:
        check_config(cfg)
    except ConfigError as err:
        raise UserError(str(err)) from None
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        summary = launch(cfg, run_dir)
    except (DataFileError, ParameterError, WorkersFailed) as err:
        raise UserError(str(err)) from None
    if summary is not None and summary.get("status") == "interrupted":
        raise SystemExit(130)  # Ctrl-C: outputs are written; stop a sweep too


def main() -> None:
    hydra_main()


if __name__ == "__main__":
    main()
