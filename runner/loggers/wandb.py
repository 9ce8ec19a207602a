"""Weights & Biases as an extra sink (``logger=wandb``); ``metrics.jsonl`` stays the source of truth.

Mode ``auto`` runs online when an API key is configured (``WANDB_API_KEY`` or a login in
~/.netrc) and offline otherwise, writing a local run under ``RUN_DIR/wandb``; the run's last log
line then says the ``wandb sync`` command that uploads it. An online start that fails (no network,
a W&B outage) falls back to an offline run: under ``auto`` it is given at most ``ONLINE_TRY_S``
seconds, so training never waits long for W&B.

What a run looks like in W&B:
- name: the method label (``label``, set by ``method=`` bundles and experiment presets) and the
  seed, e.g. ``TopK-EF-0.01 (seed 1)``; without a label ``<algo>-<compressor>-n<workers>-s<seed>``.
- group: the experiment preset (``logger.group``, by default ``${experiment_name}``; none without
  a preset), so a preset's sweep is one group.
- config: the resolved config, plus ``overrides``: the run's own command-line overrides as
  key -> value (read from ``RUN_DIR/.hydra/overrides.yaml``), so a sweep's varying keys are columns
  of the runs table.
- x axes: ``step``, ``bits_up`` (bits sent per worker so far), ``samples`` and ``time_s`` are
  defined as W&B metrics and every other metric is charted against ``step`` by default
  (``define_metric("*", step_metric="step")``). To chart against bits instead, pick ``bits_up`` as
  the X axis of a panel (panel editor > X axis), or for every panel at once in the workspace
  settings (Line plots > X axis). No ``by_bits/`` copy of the metrics is logged: it would double
  the history and the panels, while the X-axis choice gives the same curves from one copy.

W&B's own environment variables win over the ``logger.*`` keys: ``WANDB_MODE`` (``disabled``
starts no W&B at all), ``WANDB_PROJECT``, ``WANDB_ENTITY``, ``WANDB_RUN_GROUP``, ``WANDB_NAME``,
``WANDB_DIR``, ``WANDB_RUN_ID``, ``WANDB_RESUME`` and ``WANDB_INIT_TIMEOUT``: with one of them set,
the matching ``wandb.init`` argument is left out and W&B reads the variable itself.

The run's W&B id is stored in ``RUN_DIR/wandb_run_id.txt``; a resumed run (``resume`` set, or a
torchrun restart) continues that W&B run (``id=..., resume="allow"``). Every W&B call is guarded:
a failing W&B logs one warning and is switched off, it never stops training.
"""

from __future__ import annotations

import logging
import netrc
import os
from pathlib import Path
from typing import Any, cast

from omegaconf import DictConfig, OmegaConf

from compress_train.runner.metrics import flatten

log = logging.getLogger("compress_train")
ONLINE_TRY_S = 10.0  # logger.mode auto: the online start's init timeout before going offline
ID_FILE = "wandb_run_id.txt"  # in RUN_DIR: the W&B run a resumed run continues
OVERRIDES_FILE = Path(".hydra") / "overrides.yaml"  # in RUN_DIR, written by Hydra (or compress_train.run)
X_AXES = ("step", "bits_up", "samples", "time_s")  # row keys (runner/trainer.py) a chart may use as x
ENV_WINS = {
    "project": "WANDB_PROJECT",
    "entity": "WANDB_ENTITY",
    "group": "WANDB_RUN_GROUP",
    "name": "WANDB_NAME",
    "dir": "WANDB_DIR",
    "id": "WANDB_RUN_ID",
    "resume": "WANDB_RESUME",
}  # wandb.init argument -> variable


def _has_api_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def start_mode(logger_mode: str) -> tuple[str, bool]:
    """The mode to start in (``WANDB_MODE`` first, then ``logger_mode``), and whether ``auto`` chose it."""
    env = os.environ.get("WANDB_MODE")
    if env:
        return {"dryrun": "offline", "run": "online"}.get(env, env), False
    if logger_mode == "auto":
        return ("online" if _has_api_key() else "offline"), True
    return logger_mode, False


def init_run(wandb, kwargs: dict[str, Any], mode: str, auto: bool, init_timeout_s: float):
    """``wandb.init(**kwargs)`` in ``mode``; an online start that fails goes offline. Returns
    (run, the mode it runs in). Arguments whose W&B variable is set are left to W&B."""
    kwargs = {k: v for k, v in kwargs.items() if k not in ENV_WINS or not os.environ.get(ENV_WINS[k])}
    settings: dict[str, Any] = {"console": "off"}
    if not os.environ.get("WANDB_INIT_TIMEOUT"):
        settings["init_timeout"] = float(init_timeout_s)
    if mode == "online":
        online = {**settings, "silent": True}  # W&B's account look-ups would add ~10 s without a network
        if auto and "init_timeout" in online:
            online["init_timeout"] = min(online["init_timeout"], ONLINE_TRY_S)
        try:
            return wandb.init(**kwargs, mode=mode, settings=wandb.Settings(**online)), mode
        except Exception as err:  # noqa: BLE001 - no network, W&B down: keep the metrics offline
            log.warning(
                "W&B: no online run (%s: %s); logging offline instead, to `wandb sync` later",
                type(err).__name__,
                str(err).strip().split("\n")[0],
            )
            mode = "offline"
    return wandb.init(**kwargs, mode=mode, settings=wandb.Settings(**settings)), mode


def sync_line(offline_dir: Path | str) -> str:
    """The closing line of an offline W&B run."""
    return f"W&B: offline run saved; upload it with: wandb sync {offline_dir}"


def run_name(cfg: DictConfig) -> str:
    """The method label and the seed; without a label, ``<algo>-<compressor>-n<workers>-s<seed>``."""
    label = cfg.get("label")
    if label:
        return f"{label} (seed {cfg.seed})"
    return f"{cfg.algo.name}-{cfg.compressor.name}-n{cfg.workers}-s{cfg.seed}"


def read_overrides(run_dir: Path) -> dict[str, Any]:
    """The run's command-line overrides (``RUN_DIR/.hydra/overrides.yaml``) as key -> value, Hydra
    ones (``hydra.*``) left out; {} when there is no such file. Read from the file, not HydraConfig:
    under torchrun the writer is a child process without Hydra's state."""
    path = Path(run_dir) / OVERRIDES_FILE
    if not path.exists():
        return {}
    from hydra.core.override_parser.overrides_parser import OverridesParser

    lines = OmegaConf.to_container(OmegaConf.load(path))
    if not isinstance(lines, list):
        raise TypeError(f"{path} is not a list of overrides")
    parsed = OverridesParser.create().parse_overrides([str(line) for line in lines])
    return {
        o.key_or_group + (f"@{o.package}" if o.package else ""): (None if o.is_delete() else o.value())
        for o in parsed
        if not o.key_or_group.startswith("hydra.")
    }


def define_axes(run) -> None:
    """``step``, ``bits_up``, ``samples`` and ``time_s`` as metrics any chart may use as its x axis;
    every other metric against ``step`` by default."""
    for name in X_AXES:
        run.define_metric(name)
    run.define_metric("*", step_metric="step")


class WandbSink:
    def __init__(self, cfg: DictConfig, run_dir: Path):
        # a wandb Run (wandb is imported lazily, untyped here), None while disabled; _guard checks it
        self.run: Any = None
        self.offline_dir: Path | None = None
        mode, auto = start_mode(cfg.logger.mode)
        if mode == "disabled":
            log.info("W&B: disabled by %s", "WANDB_MODE" if os.environ.get("WANDB_MODE") else "logger.mode")
            return
        try:
            import wandb

            run_id = _stored_id(cfg, run_dir)
            config = cast("dict[str, Any]", OmegaConf.to_container(cfg, resolve=True))  # a DictConfig gives a dict
            try:
                config["overrides"] = read_overrides(run_dir)
            except Exception as err:  # noqa: BLE001 - a W&B extra: never stop training over it
                log.warning(
                    "W&B: the overrides in %s are left out of the run's config (%s: %s)",
                    Path(run_dir) / OVERRIDES_FILE,
                    type(err).__name__,
                    err,
                )
            kwargs = {
                "project": cfg.logger.project,
                "entity": cfg.logger.entity,
                "group": cfg.logger.get("group"),
                "name": run_name(cfg),
                "dir": str(run_dir),
                "id": run_id,
                "resume": "allow" if run_id else None,
                "config": config,
            }
            self.run, mode = init_run(wandb, kwargs, mode, auto, cfg.logger.init_timeout_s)
            where = self.run.url if mode == "online" else Path(self.run.dir).parent
            if mode == "offline":
                self.offline_dir = Path(self.run.dir).parent
            log.info("W&B: %s run %s%s, %s", mode, self.run.id, " (resumed)" if run_id else "", where)
        except Exception as err:  # noqa: BLE001 - W&B must never stop training
            log.warning("W&B disabled for this run (%s: %s); metrics.jsonl is unaffected", type(err).__name__, err)
            self.run = None
            return
        try:
            define_axes(self.run)
        except Exception as err:  # noqa: BLE001 - charts then use W&B's own step; logging goes on
            log.warning("W&B: cannot define the x-axis metrics (%s: %s)", type(err).__name__, err)
        try:
            (Path(run_dir) / ID_FILE).write_text(self.run.id + "\n")
        except OSError as err:
            log.warning(
                "W&B: cannot store the run id in %s (%s); a resume will start a new W&B run",
                Path(run_dir) / ID_FILE,
                err,
            )

    def _guard(self, fn, *args) -> None:
        if self.run is None:
            return
        try:
            fn(*args)
        except Exception as err:  # noqa: BLE001
            log.warning("W&B disabled after an error (%s: %s)", type(err).__name__, err)
            self.run = None

    def log(self, row: dict[str, Any]) -> None:
        self._guard(lambda r: self.run.log({k: v for k, v in r.items() if v is not None}, step=r["step"]), row)

    def summary(self, summary: dict[str, Any]) -> None:
        self._guard(lambda s: self.run.summary.update(flatten(s, sep="/")), summary)

    def close(self) -> None:
        if self.run is None:
            return
        self._guard(lambda: self.run.finish())
        if self.run is not None and self.offline_dir is not None:
            log.info(sync_line(self.offline_dir))
        self.run = None


def _stored_id(cfg: DictConfig, run_dir: Path) -> str | None:
    """For a resumed run, the W&B id stored in RUN_DIR (or in the run directory ``resume=PATH`` names,
    or the one holding the checkpoint folder it names); None for a fresh run or when none is stored."""
    restarted = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0) > 0
    resume = cfg.get("resume")
    if not resume and not restarted:
        return None
    places = [Path(run_dir)]
    if resume and resume != "auto":
        target = Path(resume).expanduser()
        places += [target, target.parent.parent]  # RUN_DIR, or RUN_DIR/checkpoints/step_N
    for place in places:
        try:
            stored = (place / ID_FILE).read_text().strip()
        except OSError:
            continue
        if stored:
            return stored
    return None


def sinks(cfg: DictConfig, run_dir: Path) -> list:
    """``metrics.jsonl`` (the source of truth) and W&B beside it."""
    from compress_train.runner.metrics import JsonlSink

    return [JsonlSink(run_dir), WandbSink(cfg, run_dir)]


IMPLEMENTATION = sinks
