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
from omegaconf import DictConfig

from compress_train.algorithms.base import ParameterError
from compress_train.datasets.errors import DataFileError
from compress_train.runner.config.check import ConfigError, check_config
from compress_train.runner.discover import HELP, explain_composition_error, groups_help, listing, presets
from compress_train.runner.launch import launch
from compress_train.runner.signals import EXIT_CODES
from compress_train.runner.checkpoint import CheckpointError
from compress_train.runner.run import RunDirError
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
    except (DataFileError, ParameterError, WorkersFailed, CheckpointError, RunDirError) as err:
        raise UserError(str(err)) from None
    if summary is not None and summary.get("status") in EXIT_CODES:
        raise SystemExit(EXIT_CODES[summary["status"]])  # Ctrl-C 130, SIGTERM 143: outputs and a checkpoint are written


def first_values(overrides: list[str]) -> list[str] | None:
    """The command line with each sweep (``a,b,c``) cut to its first value, for one composition."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception:  # Hydra reports a malformed override itself
        return None
    out = []
    for o in parsed:
        if o.is_sweep_override():
            values = list(o.sweep_string_iterator())
            out.append(f"{o.get_key_element()}={values[0]}" if values else o.input_line)
        else:
            out.append(o.input_line)
    return out


def preflight(overrides: list[str]) -> None:
    """Compose once before Hydra does, so that a mistyped key gets the nearest one and a wrong type
    our message template (Hydra's own messages name neither)."""
    from hydra import compose, initialize_config_module
    from hydra.errors import ConfigCompositionException

    first = first_values([o for o in overrides if not o.startswith("hydra.")])
    if first is None:
        return
    with initialize_config_module(config_module="compress_train.conf", version_base="1.3"):
        try:
            compose(config_name="config", overrides=first)
            return
        except ConfigCompositionException as err:
            text = f"{err} {err.__cause__ or ''}"
        groups = [o for o in first if "." not in o.split("=", 1)[0]]
        try:
            base = compose(config_name="config", overrides=groups)
        except ConfigCompositionException:
            base = None
    message = explain_composition_error(text, base)
    if message is not None:
        raise UserError(message)


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
    overrides = [a for a in args if not a.startswith("-") and "=" in a]
    if overrides and all(a in ("-m", "--multirun") for a in args if a.startswith("-")):
        preflight(overrides)
    sys.argv = [sys.argv[0], *length_overrides(args)]
    hydra_main()


if __name__ == "__main__":
    main()
