"""Weights & Biases as an extra sink (``logger=wandb``); ``metrics.jsonl`` stays the source of truth.

Mode ``auto`` runs online when an API key is configured (``WANDB_API_KEY`` or a login in
~/.netrc) and offline otherwise, writing a local run under ``RUN_DIR/wandb`` to ``wandb sync``
later. An online start that fails (no network, a W&B outage) falls back to an offline run: under
``auto`` it is given at most ``ONLINE_TRY_S`` seconds, so training never waits long for W&B.

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
from typing import Any

from omegaconf import DictConfig, OmegaConf

from compress_train.runner.metrics import flatten

log = logging.getLogger("compress_train")
ONLINE_TRY_S = 10.0            # logger.mode auto: the online start's init timeout before going offline
ID_FILE = "wandb_run_id.txt"   # in RUN_DIR: the W&B run a resumed run continues
ENV_WINS = {"project": "WANDB_PROJECT", "entity": "WANDB_ENTITY", "group": "WANDB_RUN_GROUP", "name": "WANDB_NAME",
            "dir": "WANDB_DIR", "id": "WANDB_RUN_ID", "resume": "WANDB_RESUME"}  # wandb.init argument -> variable


def _has_api_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def _mode(cfg: DictConfig) -> tuple[str, bool]:
    """The mode to start in (``WANDB_MODE`` first, then ``logger.mode``), and whether ``auto`` chose it."""
    env = os.environ.get("WANDB_MODE")
    if env:
        return {"dryrun": "offline", "run": "online"}.get(env, env), False
    if cfg.logger.mode == "auto":
        return ("online" if _has_api_key() else "offline"), True
    return cfg.logger.mode, False


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


class WandbSink:
    def __init__(self, cfg: DictConfig, run_dir: Path):
        self.run = None
        mode, auto = _mode(cfg)
        if mode == "disabled":
            log.info("W&B: disabled by %s", "WANDB_MODE" if os.environ.get("WANDB_MODE") else "logger.mode")
            return
        try:
            import wandb

            run_id = _stored_id(cfg, run_dir)
            kwargs = dict(project=cfg.logger.project, entity=cfg.logger.entity, group=cfg.logger.group,
                          name=f"{cfg.algo.name}-{cfg.compressor.name}-n{cfg.workers}-s{cfg.seed}",
                          dir=str(run_dir), id=run_id, resume="allow" if run_id else None)
            kwargs = {k: v for k, v in kwargs.items() if not os.environ.get(ENV_WINS[k])}
            kwargs["config"] = OmegaConf.to_container(cfg, resolve=True)
            settings = {"console": "off"}
            if not os.environ.get("WANDB_INIT_TIMEOUT"):
                settings["init_timeout"] = float(cfg.logger.init_timeout_s)
            if mode == "online":
                online = {**settings, "silent": True}  # W&B's account look-ups would add ~10 s without a network
                if auto and "init_timeout" in online:
                    online["init_timeout"] = min(online["init_timeout"], ONLINE_TRY_S)
                try:
                    self.run = wandb.init(**kwargs, mode=mode, settings=wandb.Settings(**online))
                except Exception as err:  # noqa: BLE001 - no network, W&B down: keep the metrics offline
                    log.warning("W&B: no online run (%s: %s); logging offline instead, to `wandb sync` later",
                                type(err).__name__, str(err).strip().split("\n")[0])
                    mode = "offline"
            if self.run is None:
                self.run = wandb.init(**kwargs, mode=mode, settings=wandb.Settings(**settings))
            where = self.run.url if mode == "online" else Path(self.run.dir).parent
            log.info("W&B: %s run %s%s, %s", mode, self.run.id, " (resumed)" if run_id else "", where)
        except Exception as err:  # noqa: BLE001 - W&B must never stop training
            log.warning("W&B disabled for this run (%s: %s); metrics.jsonl is unaffected", type(err).__name__, err)
            return
        try:
            (Path(run_dir) / ID_FILE).write_text(self.run.id + "\n")
        except OSError as err:
            log.warning("W&B: cannot store the run id in %s (%s); a resume will start a new W&B run",
                        Path(run_dir) / ID_FILE, err)

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
        self._guard(lambda: self.run.finish())


def sinks(cfg: DictConfig, run_dir: Path) -> list:
    """``metrics.jsonl`` (the source of truth) and W&B beside it."""
    from compress_train.runner.metrics import JsonlSink

    return [JsonlSink(run_dir), WandbSink(cfg, run_dir)]


IMPLEMENTATION = sinks
