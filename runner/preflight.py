"""The command line checked before Hydra starts anything, so that a rejected config leaves no run
directory behind and a sweep with bad jobs never starts.

- every group option named (``experiment=``, ``method=``, ``problem=`` included, which Hydra's
  ``optional`` defaults would silently drop) must exist; the message names the nearest ones;
- a key added with ``+`` must be one the config has (nothing would read it otherwise);
- a mistyped key gets the nearest key, a wrong type the message template (``discover.py``);
- every job of a sweep (the command line's ``a,b`` values and a preset's sweeper params, the
  cartesian product) is composed and validated, and all bad jobs are reported at once;
- the run or sweep directory must be creatable; a single run's directory must be unused, or, with
  ``resume``, hold the same run (a resume that would change it is refused before Hydra writes there).
"""

from __future__ import annotations

import difflib
import itertools
import json
import os
import tempfile
from pathlib import Path
from typing import Any, cast

from hydra import compose, initialize_config_module
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf, open_dict

from compress_train.runner.config.check import ConfigError, check_config, check_scale
from compress_train.runner.discover import CONF, explain_composition_error, nearest_key

MAX_JOBS = 512  # a larger sweep is validated job by job as it runs


class PreflightError(ValueError):
    """One or more lines for the user; the CLI prints them and exits 2."""


class NothingToDo(Exception):
    """A finished run resumed with nothing to extend: one line for the user, exit code 0, no file touched."""


def check_run_dir(cfg) -> None:
    """A single run's directory, before Hydra writes into it: a fresh run needs an unused one, a
    resume must continue the same run (``run.check_before_writing``)."""
    from compress_train.runner.checkpoint import CheckpointError
    from compress_train.runner.run import RunDirError, check_before_writing, nothing_to_resume

    run_dir = Path(str(cfg.hydra.run.dir))
    try:
        finished = check_before_writing(cfg, run_dir)
    except (RunDirError, CheckpointError) as err:
        raise PreflightError(str(err)) from None
    if finished is not None:
        raise NothingToDo(nothing_to_resume(run_dir, finished))


def _options(group: str) -> list[str]:
    return sorted(str(p.relative_to(CONF / group).with_suffix("")) for p in (CONF / group).rglob("*.yaml"))


def _values(override) -> list[str]:
    if override.is_sweep_override():
        return [str(v) for v in override.sweep_string_iterator()]
    value = override.value()
    return ["null" if value is None else str(value)]


def _line(override: Override) -> str:
    """The override as typed; ``parse_overrides`` records it on every override it returns."""
    assert override.input_line is not None
    return override.input_line


def group_errors(parsed) -> list[str]:
    errors = []
    for o in parsed:
        group = o.key_or_group
        if "." in group or not (CONF / group).is_dir() or o.is_delete():
            continue
        options = _options(group)
        for value in _values(o):
            if value != "null" and value not in options:
                near = difflib.get_close_matches(value, options, n=3, cutoff=0.4) or options[:5]
                errors.append(
                    f"`{group}` must be one of the options in conf/{group}/ (nearest: {near}; "
                    f"`compress-train list` shows all), but is {value!r}."
                )
    return errors


def jobs(parsed, sweeper_params: dict[str, str]) -> list[list[str]]:
    """Every job's overrides: the cartesian product of the sweeps (command line over preset)."""
    axes: dict[str, list[str]] = {}
    for key, values in sweeper_params.items():
        (o,) = OverridesParser.create().parse_overrides([f"{key}={values}"])
        axes[key] = _values(o)
    for o in parsed:
        axes[o.get_key_element()] = _values(o)
    keys = list(axes)
    return [[f"{k}={v}" for k, v in zip(keys, combo)] for combo in itertools.product(*(axes[k] for k in keys))]


def writable(directory: str) -> str | None:
    """None when ``directory`` can be created (or written into), else the nearest existing ancestor
    that blocks it. Tried for real, with a temporary folder removed at once: permission bits do not
    tell (root may write anywhere, but not into /proc or a read-only mount)."""
    path = Path(directory).expanduser().absolute()
    while not path.exists():
        path = path.parent
    if not path.is_dir():
        return str(path)
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".compress-train-probe-", dir=path))
    except OSError:
        return str(path)
    return None


def job_config(cfg: Any) -> Any:
    """``cfg`` (composed with ``return_hydra_config``) as the job sees it: the same tree, no ``hydra`` node."""
    job = cfg.copy()
    with open_dict(job):
        del job["hydra"]
    return job


def check(overrides: list[str], multirun: bool, outputs: bool = False) -> None:
    """Raise PreflightError with every problem of the command line's job(s). With ``outputs`` (the
    CLI, just before Hydra starts) also what reads the file system: a single run's directory
    (``check_run_dir``; NothingToDo for a finished run resumed with nothing to extend) and the data
    every job of a sweep needs (``check_data``)."""
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception:  # a malformed override: Hydra's own message says what is wrong
        return
    errors = group_errors(parsed)
    if errors:
        raise PreflightError("\n".join(errors))
    plain = [o for o in parsed if not o.get_key_element().startswith("hydra.")]
    with initialize_config_module(config_module="compress_train.conf", version_base="1.3"):
        first = [f"{o.get_key_element()}={_values(o)[0]}" if o.is_sweep_override() else _line(o) for o in plain]
        try:
            hydra_keys = [
                _line(o) for o in parsed if o.get_key_element().startswith("hydra.") and not o.is_sweep_override()
            ]
            cfg = compose(config_name="config", overrides=[*first, *hydra_keys], return_hydra_config=True)
        except ConfigCompositionException as err:
            text = f"{err} {err.__cause__ or ''}"
            groups = [_line(o) for o in plain if "." not in o.get_key_element() and not o.is_sweep_override()]
            try:
                base = compose(config_name="config", overrides=groups)
            except ConfigCompositionException:
                base = None
            message = explain_composition_error(text, base)
            if message is not None:
                raise PreflightError(message) from None
            return  # Hydra reports what we cannot phrase better
        adds = [o for o in plain if o.is_add()]
        without = (
            compose(config_name="config", overrides=[x for x, o in zip(first, plain) if not o.is_add()])
            if adds
            else cfg
        )
        for o in adds:
            if OmegaConf.select(without, o.key_or_group, default="<missing>") == "<missing>":
                near = nearest_key(without, o.key_or_group)
                raise PreflightError(
                    f"`{o.key_or_group}` is not a config key: nothing would read it."
                    + (f" Did you mean `{near}`?" if near else "")
                )
        multirun = multirun or str(cfg.hydra.mode).endswith("MULTIRUN")
        target = cfg.hydra.sweep.dir if multirun else cfg.hydra.run.dir
        blocked = writable(target)
        if blocked is not None:
            raise PreflightError(
                f"`hydra.{'sweep' if multirun else 'run'}.dir` '{target}' cannot be created: "
                f"'{blocked}' is not a writable directory."
            )
        scale_errors = check_scale(cfg)  # before anything interpolates ${scales.${scale}...}
        if scale_errors:
            raise PreflightError("invalid configuration:\n  " + "\n  ".join(scale_errors))
        params = cfg.hydra.sweeper.get("params") if multirun else None
        # a sweeper preset is a mapping of config keys to sweep strings
        sweeper = cast("dict[str, Any]", OmegaConf.to_container(params, resolve=True)) if params else {}
        # a preset's sweep axes are checked as the command line's are: Hydra skips an `optional` group
        # default (method) whose option does not exist, so a misspelt method would run as no method at all
        given = {o.get_key_element() for o in plain}  # the command line's own values replace the preset's
        axes = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in sweeper.items() if k not in given])
        errors = group_errors(axes)
        if errors:
            raise PreflightError("the preset's sweep (hydra.sweeper.params): " + "\n".join(errors))
        todo = jobs(plain, {k: str(v) for k, v in sweeper.items()}) if multirun else [first]
        bad = []
        datasets: dict[str, Any] = {}  # the sweep's distinct dataset sections
        for job in todo[:MAX_JOBS]:
            try:
                # a single run's job is ``cfg`` without Hydra's node: not composed a second time
                job_cfg = compose(config_name="config", overrides=job) if multirun else job_config(cfg)
                check_config(job_cfg)
                datasets.setdefault(json.dumps(OmegaConf.to_container(job_cfg.dataset, resolve=True)), job_cfg.dataset)
            except ConfigError as err:
                bad.append((job, err.errors))
            except ConfigCompositionException as err:
                bad.append((job, [explain_composition_error(f"{err} {err.__cause__ or ''}", None) or str(err)]))
    if bad and not multirun:
        raise PreflightError("invalid configuration:\n  " + "\n  ".join(bad[0][1]))
    if not multirun and outputs:
        check_run_dir(cfg)
    if bad:
        lines = [f"{len(bad)} of {len(todo)} sweep jobs are invalid; none was started:"]
        lines += [f"  {' '.join(job)}:\n    " + "\n    ".join(errs) for job, errs in bad]
        raise PreflightError("\n".join(lines))
    if multirun and outputs:
        check_data(list(datasets.values()), len(todo))


def check_data(datasets: list[Any], jobs: int) -> None:
    """Load every distinct dataset a sweep's jobs need, once, before the first job: data that is
    missing or unreadable stops the sweep with its one line instead of failing every job alike."""
    import inspect

    from compress_train.datasets.errors import DataFileError
    from compress_train.runner.tasks.data import DATASETS, load_dataset

    for section in datasets:
        if "workers" in inspect.signature(DATASETS.get(section.name)).parameters:
            continue  # a generated convex problem (quadratic, lsq_interp): built per run, nothing on disk
        try:
            load_dataset(section, lambda message: None)
        except DataFileError as err:
            raise PreflightError(f"{err} (the sweep's {jobs} job(s) need it; none was started)") from None
