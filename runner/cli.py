"""``compress-train``: compose the Hydra config, validate it, and launch the run.

    compress-train algo=comp_ams compressor=topk
    compress-train -m compressor=topk,blocksign seed=1,2,3
    compress-train launcher=torchrun workers=2

Bad values stop before training with one line per problem (exit code 2). A diverged run is a
result: status ``diverged`` in summary.json, exit code 0, and a sweep goes on.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from compress_train.algorithms.base import ParameterError
from compress_train.datasets.errors import DataFileError
from compress_train.runner import preflight
from compress_train.runner.checkpoint import CheckpointError
from compress_train.runner.config.check import ConfigError, check_config
from compress_train.runner.discover import HELP, groups_help, listing, presets
from compress_train.runner.launch import launch
from compress_train.runner.launchers.torchrun import WorkersFailed
from compress_train.runner.metrics import OutputError
from compress_train.runner.run import RunDirError
from compress_train.runner.signals import EXIT_CODES

log = logging.getLogger("compress_train")


class RunFailed(SystemExit):
    """A run that could not go on for a reason outside the config (a full disk): one line, exit code 1."""

    def __init__(self, message: str):
        print(f"error: {message}", file=sys.stderr)
        super().__init__(1)


class UserError(SystemExit):
    """Ends a run with a clear message and exit code 2, without a traceback."""

    def __init__(self, message: str):
        print(f"error: {message}", file=sys.stderr)
        super().__init__(2)


@hydra.main(version_base="1.3", config_path="pkg://compress_train.conf", config_name="config")
def hydra_main(cfg: DictConfig) -> None:
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        return sweep_job(cfg)
    run_job(cfg)


def sweep_job(cfg: DictConfig) -> None:
    """One job of a sweep: a job that fails is recorded as failed (its summary.json, one line in the
    log) and the sweep goes on; Ctrl-C and SIGTERM still stop the whole sweep."""
    try:
        run_job(cfg)
    except (UserError, RunFailed):  # its one line is printed
        log.error(f"job {HydraConfig.get().job.num} failed; the sweep goes on")
    except Exception:
        log.exception(f"job {HydraConfig.get().job.num} failed with a traceback; the sweep goes on")


def run_job(cfg: DictConfig) -> None:
    try:
        check_config(cfg)
    except ConfigError as err:
        raise UserError(str(err)) from None
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        summary = launch(cfg, run_dir)
    except (DataFileError, ParameterError, WorkersFailed, CheckpointError, RunDirError) as err:
        raise UserError(str(err)) from None
    except OutputError as err:
        raise RunFailed(str(err)) from None
    if summary is not None and summary.get("status") in EXIT_CODES:
        raise SystemExit(EXIT_CODES[summary["status"]])  # Ctrl-C 130, SIGTERM 143: outputs and a checkpoint are written


def length_overrides(overrides: list[str]) -> list[str]:
    """``train.max_steps=N`` given alone sets the run's length (the default train.epochs would cap it)."""
    keys = {o.split("=", 1)[0].lstrip("+~") for o in overrides}
    if "train.max_steps" in keys and "train.epochs" not in keys:
        return [*overrides, "train.epochs=null"]
    return overrides


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["list"]:
        print(listing())
        return
    word = os.environ.get("COMP_LINE", "").split(" ")[-1]
    if "-sc" in args and word.startswith("experiment="):  # Hydra completes groups, not nested presets
        print(" ".join(f"experiment={p}" for p in presets() if f"experiment={p}".startswith(word)))
        return
    if any(a in ("-h", "--help") for a in args):
        print(HELP + "\n" + groups_help())
        return
    flags = [a for a in args if a.startswith("-")]
    if all(a in ("-m", "--multirun") for a in flags):
        try:
            preflight.check([a for a in args if not a.startswith("-")], multirun=bool(flags))
        except preflight.PreflightError as err:
            raise UserError(str(err)) from None
    sys.argv = [sys.argv[0], *length_overrides(args)]
    hydra_main()


if __name__ == "__main__":
    main()
