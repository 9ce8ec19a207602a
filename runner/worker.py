"""The per-rank entry point under torchrun: ``python -m compress_train.runner``.

Either ``--config RUN_DIR/config.yaml`` (what ``compress-train launcher=torchrun`` passes), or
Hydra overrides (``torchrun --nproc-per-node 2 -m compress_train.runner algo=ef_sgd ...``): then
the config is composed here, ``workers`` is set to the world size, and rank 0 picks the run
directory (``outputs/runs/<date>/<time>``, where ``compress-train`` writes) and shares it.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from datetime import datetime
from pathlib import Path

import torch
import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf

from compress_train.algorithms.base import ParameterError
from compress_train.datasets.errors import DataFileError
from compress_train.runner.checkpoint import CheckpointError
from compress_train.runner.config.check import ConfigError, check_config
from compress_train.runner.dist import DistCommunicator, init_process_group, shutdown
from compress_train.runner.run import RunDirError, run_training
from compress_train.runner.signals import EXIT_CODES


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module(config_module="compress_train.conf", version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides)


def die_with_parent() -> None:
    """Linux: this worker gets SIGKILL when its torchrun agent dies, so that a killed launcher never
    leaves workers writing into the run directory (another process may already resume it)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def default_run_dir(now: datetime | None = None) -> Path:
    """A run started by hand writes where ``compress-train`` does (conf/config.yaml's ``hydra.run.dir``):
    ``outputs/runs/<date>/<time to the microsecond>``."""
    return Path("outputs/runs") / (now or datetime.now()).strftime("%Y-%m-%d/%H-%M-%S-%f")


def main(argv: list[str] | None = None) -> int:
    die_with_parent()
    parser = argparse.ArgumentParser(prog="python -m compress_train.runner")
    parser.add_argument("--config", type=Path, help="a frozen config.yaml written by compress-train")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, when no --config is given")
    args = parser.parse_args(argv)
    if args.config is not None:
        if not args.config.is_file():
            print(f"error: config file {args.config} does not exist", file=sys.stderr)
            return 2
        loaded = OmegaConf.load(args.config)
        if not isinstance(loaded, DictConfig):
            print(f"error: config file {args.config} holds a list, not a config mapping", file=sys.stderr)
            return 2
        cfg = loaded
        run_dir = args.config.resolve().parent
    else:
        world = os.environ.get("WORLD_SIZE", "1")
        given = [o.split("=", 1)[1] for o in args.overrides if o.startswith("hydra.run.dir=")]
        cfg = compose(
            ["launcher=torchrun", *(o for o in args.overrides if not o.startswith("hydra.")), f"workers={world}"]
        )
        run_dir = Path(given[-1]) if given else None
    try:
        check_config(cfg)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    device = init_process_group(
        cfg.launcher.get("backend", "auto"), cfg.launcher.get("timeout_s", 60), cfg.get("device", "auto")
    )
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        if args.config is None:  # by hand: rank 0 names the run directory (to the microsecond) and freezes the config
            shared = [str(run_dir or default_run_dir())]
            dist.broadcast_object_list(shared, src=0)
            run_dir = Path(shared[0])
            if dist.get_rank() == 0:
                run_dir.mkdir(parents=True, exist_ok=True)
                frozen = run_dir / "config.yaml"
                if (
                    frozen.exists()
                    and not cfg.get("resume")
                    and int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) == 0
                ):
                    raise RunDirError(
                        f"run directory {run_dir} already holds a run (config.yaml): continue it with "
                        "resume=auto, or choose another hydra.run.dir"
                    )
                frozen.write_text(OmegaConf.to_yaml(cfg, resolve=True))
        comm = DistCommunicator(device)
        if comm.is_writer:
            logging.basicConfig(
                level=logging.INFO,
                format="[%(asctime)s][rank 0] %(message)s",
                handlers=[logging.StreamHandler(), logging.FileHandler(run_dir / "train.log")],
            )
        summary = run_training(cfg, comm, run_dir, device)
    except (DataFileError, ParameterError) as err:  # before the first step: compress-train removes the run dir
        kind = "data" if isinstance(err, DataFileError) else "parameters"
        print(f"rejected (rank {dist.get_rank()}, {kind}): {err}", file=sys.stderr)
        return 2
    except (CheckpointError, RunDirError) as err:
        print(f"error (rank {dist.get_rank()}): {err}", file=sys.stderr)
        return 2
    finally:
        shutdown()
    return EXIT_CODES.get(str(summary.get("status")), 0)
