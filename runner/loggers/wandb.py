"""Weights & Biases as an extra sink (``logger=wandb``); ``metrics.jsonl`` stays the source of truth.

Mode ``auto`` runs online when an API key is configured (``WANDB_API_KEY`` or a login in
~/.netrc) and offline otherwise, writing a local run under ``RUN_DIR/wandb`` to ``wandb sync``
later. Every W&B call is guarded: a failing W&B logs one warning and is switched off, it
never stops or blocks training.
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


def _has_api_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


class WandbSink:
    def __init__(self, cfg: DictConfig, run_dir: Path):
        self.run = None
        mode = cfg.logger.mode
        if mode == "auto":
            mode = "online" if _has_api_key() else "offline"
        try:
            import wandb

            self.run = wandb.init(
                project=cfg.logger.project, entity=cfg.logger.entity, group=cfg.logger.group,
                name=f"{cfg.algo.name}-{cfg.compressor.name}-n{cfg.workers}-s{cfg.seed}",
                config=OmegaConf.to_container(cfg, resolve=True), dir=str(run_dir), mode=mode,
                settings=wandb.Settings(init_timeout=cfg.logger.init_timeout_s, console="off"),
            )
            log.info("W&B: %s run in %s", mode, run_dir / "wandb")
        except Exception as err:  # noqa: BLE001 - W&B must never stop training
            log.warning("W&B disabled for this run (%s: %s); metrics.jsonl is unaffected", type(err).__name__, err)

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
