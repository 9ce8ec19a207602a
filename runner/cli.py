"""``compress-train``: compose the Hydra config, validate it, and launch the run.

    compress-train algo=comp_ams compressor=topk
    compress-train -m compressor=topk,blocksign seed=1,2,3
    compress-train launcher=torchrun workers=2

Bad values stop before training with one line per problem (exit code 2). A diverged run is a
result: status ``diverged`` in summary.json, exit code 0, and a sweep goes on.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from compress_train.algorithms.base import ParameterError
from compress_train.datasets.errors import DataFileError
from compress_train.runner import preflight, sweep_adopt
from compress_train.runner.checkpoint import CheckpointError
from compress_train.runner.config.check import ConfigError, check_config
from compress_train.runner.discover import (
    CONF,
    HELP,
    explain_composition_error,
    groups_help,
    listing,
    preset_help,
    presets,
)
from compress_train.runner.launch import launch
from compress_train.runner.launchers.torchrun import WorkersFailed
from compress_train.runner.metrics import OutputError
from compress_train.runner.run import RunDirError
from compress_train.runner.signals import EXIT_CODES

log = logging.getLogger("compress_train")


class RunFailed(SystemExit):
    """A run that could not go on for a reason outside the config (a full disk): one line, exit code 2."""

    def __init__(self, message: str):
        print(f"error: {message}", file=sys.stderr)
        super().__init__(2)


class UserError(SystemExit):
    """Ends a run with a clear message and exit code 2, without a traceback."""

    def __init__(self, message: str):
        print(f"error: {message}", file=sys.stderr)
        super().__init__(2)


@hydra.main(version_base="1.3", config_path="pkg://compress_train.conf", config_name="config")
def hydra_main(cfg: DictConfig) -> str | None:
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        return sweep_job(cfg)
    run_job(cfg)
    return None


def sweep_job(cfg: DictConfig) -> str | None:
    """One job of a sweep: a job that fails is recorded as failed (its summary.json, one line in the
    log, the return value "failed" that the sweep's end counts) and the sweep goes on; Ctrl-C and
    SIGTERM still stop the whole sweep."""
    try:
        run_job(cfg)
    except (UserError, RunFailed):  # its one line is printed
        log.error(f"job {HydraConfig.get().job.num} failed; the sweep goes on")
        return "failed"
    except Exception:
        log.exception(f"job {HydraConfig.get().job.num} failed with a traceback; the sweep goes on")
        return "failed"
    return None


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


DIRNAME_EXCLUDES = "hydra.job.config.override_dirname.exclude_keys"


def length_overrides(overrides: list[str]) -> list[str]:
    """``train.max_steps=N`` given alone sets the run's length (the default train.epochs would cap it):
    ``train.epochs=null`` is added, and kept out of a sweep's job directory names (which name what was
    typed)."""
    keys = {o.split("=", 1)[0].lstrip("+~") for o in overrides}
    if "train.max_steps" in keys and "train.epochs" not in keys:
        added = [*overrides, "train.epochs=null"]
        if DIRNAME_EXCLUDES not in keys:
            excluded = OmegaConf.load(CONF / "config.yaml").hydra.job.config.override_dirname.exclude_keys
            added.append(f"{DIRNAME_EXCLUDES}=[{','.join([*map(str, excluded), 'train.epochs'])}]")
        return added
    return overrides


SCHEDULE = "train.lr_schedule."


def _hydra_value(value: Any) -> str:
    """``value`` written as a Hydra override value (dicts and lists in Hydra's grammar)."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_hydra_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_hydra_value(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, str) else str(value)


def schedule_overrides(overrides: list[str]) -> list[str]:
    """``train.lr_schedule.KEY=VALUE`` sets one key of the schedule in force (the preset's, or none):
    the dotted overrides become one ``train.lr_schedule={...}`` with the other keys kept, since Hydra
    cannot set a key inside a null or interpolated node. A sweep's first values pick the schedule."""
    dotted = [o for o in overrides if o.lstrip("+").startswith(SCHEDULE) and "=" in o]
    if not dotted:
        return overrides
    rest = [o for o in overrides if o not in dotted]
    from hydra import compose, initialize_config_module
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    parsed = OverridesParser.create().parse_overrides([o for o in rest if not o.startswith("-")])
    first = [
        f"{o.get_key_element()}={next(iter(o.sweep_string_iterator()))}" if o.is_sweep_override() else str(o.input_line)
        for o in parsed
        if not o.get_key_element().startswith("hydra.")
    ]
    with initialize_config_module(config_module="compress_train.conf", version_base="1.3"):
        current = compose(config_name="config", overrides=first).train.lr_schedule
    schedule = dict(OmegaConf.to_container(current, resolve=True) or {}) if current is not None else {}  # type: ignore[arg-type]
    for o in OverridesParser.create().parse_overrides([d.lstrip("+") for d in dotted]):
        schedule[o.key_or_group[len(SCHEDULE) :]] = o.value()
    return [*rest, f"train.lr_schedule={_hydra_value(schedule)}"]


def dry_run(args: list[str]) -> str:
    """``--dry-run``: every job the command line would start, its directory and steps, and the total;
    configs are composed, nothing is started or written."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import ConfigCompositionException

    from compress_train.runner import plan

    multirun = any(a in ("-m", "--multirun") for a in args)
    overrides = length_overrides(schedule_overrides([a for a in args if not a.startswith("-")]))
    try:
        errors = preflight.group_errors(OverridesParser.create().parse_overrides(overrides))
    except Exception:  # noqa: BLE001 - a malformed override: Hydra's message below says what is wrong
        errors = []
    if errors:
        raise UserError("\n".join(errors))
    try:
        return plan.dry_run(plan.plan(overrides, multirun))
    except ConfigCompositionException as err:
        try:  # the run's own check words it best (the nearest key included); it stops at the bad override
            preflight.check(overrides, multirun)
        except preflight.PreflightError as said:
            raise UserError(str(said)) from None
        raise UserError(explain_composition_error(f"{err} {err.__cause__ or ''}", None) or str(err)) from None


CONFIG_PATH_FLAGS = ("--config-path", "-cp", "--config-dir", "-cd")


def conf_snapshot_args(args: list[str]) -> list[str]:
    """Hydra's flag to compose from a copy of conf/ taken now, which lives as long as this process.
    A sweep composes each job as it starts: from the live conf/, an edit made while it runs would reach
    its later jobs (a key added since its start stopped each of them against the schemas built at the
    start), so every job of a sweep is composed from conf/ as it was when the sweep began. None when
    the command line names its own config path, or another Hydra launcher: submitit composes each job
    where it runs (a cluster node, where this process's temporary copy does not exist), from the
    installed package."""
    if any(a.split("=", 1)[0] in CONFIG_PATH_FLAGS or a.lstrip("+").startswith("hydra/launcher=") for a in args):
        return []
    try:
        snapshot = Path(tempfile.mkdtemp(prefix="compress_train_conf_"))
        atexit.register(shutil.rmtree, snapshot, True)
        shutil.copytree(CONF, snapshot / "conf")
    except OSError as err:  # no writable temporary folder: compose from conf/ itself, as before
        log.warning("conf/ is not copied for this run (%s): an edit of conf/ while it runs reaches its later jobs", err)
        return []
    return ["--config-path", str(snapshot / "conf")]


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["list"]:
        print(listing())
        return
    if "--dry-run" in args:
        print(dry_run([a for a in args if a != "--dry-run"]))
        return
    word = os.environ.get("COMP_LINE", "").split(" ")[-1]
    if "-sc" in args and word.startswith("experiment="):  # Hydra completes groups, not nested presets
        print(" ".join(f"experiment={p}" for p in presets() if f"experiment={p}".startswith(word)))
        return
    if any(a in ("-h", "--help") for a in args):
        named = [a.split("=", 1)[1] for a in args if a.startswith("experiment=")]
        print(preset_help(named[-1]) if named and named[-1] in presets() else HELP + "\n" + groups_help())
        return
    args = schedule_overrides(args)
    flags = [a for a in args if a.startswith("-")]
    if all(a in ("-m", "--multirun") for a in flags):
        try:
            overrides = [a for a in length_overrides(args) if not a.startswith("-")]
            preflight.check(overrides, multirun=bool(flags), outputs=True)
        except preflight.PreflightError as err:
            raise UserError(str(err)) from None
        except preflight.NothingToDo as done:
            print(done, file=sys.stderr)
            return
        if "resume=auto" in overrides:  # a sweep given more values keeps its runs (sweep_adopt)
            from compress_train.runner.plan import plan

            jobs = plan(overrides, multirun=bool(flags), sizes=False)
            if jobs.multirun:
                sweep_adopt.adopt([j.directory for j in jobs.jobs], log=lambda line: print(line, file=sys.stderr))
    sys.argv = [sys.argv[0], *length_overrides(args), *conf_snapshot_args(args)]
    hydra_main()


if __name__ == "__main__":
    main()
