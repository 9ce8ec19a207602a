"""``metrics.jsonl`` + ``summary.json`` in the run directory (``logger=jsonl``, always written)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from compress_train.runner.metrics import JsonlSink, Sink


def sinks(cfg: DictConfig, run_dir: Path) -> list[Sink]:
    return [JsonlSink(run_dir)]


IMPLEMENTATION = sinks
