"""``compress-report``'s figures and summary table as a W&B run (``job_type="report"``).

It runs when the reported runs used ``logger=wandb`` (their ``config.yaml``) or with ``--wandb``:
same project and entity as those runs (else ``conf/logger/wandb.yaml``'s), group = the runs'
experiment preset, so the report sits beside its sweep's runs in W&B. Each PNG the report wrote is
logged as an image under ``figures/<file name>``, the summary table as ``summary`` (a W&B table).
The mode is the training runs' rule (``runner/loggers/wandb.py``): online with an API key,
offline without one (then the last line says the ``wandb sync`` command). A W&B failure prints one
warning and never fails the report.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pandas as pd

from compress_train.runner.loggers.wandb import init_run, start_mode, sync_line

DEFAULTS = {"name": "jsonl", "mode": "auto", "project": "compress-train", "entity": None, "init_timeout_s": 30}


def runs_logger(runs: pd.DataFrame) -> dict[str, Any] | None:
    """The ``logger`` settings of the first run that used ``logger=wandb``; None when none did."""
    import yaml

    for run_dir in runs["run_dir"]:
        try:
            cfg = yaml.safe_load((Path(run_dir) / "config.yaml").read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        logger = cfg.get("logger") if isinstance(cfg, dict) else None
        if isinstance(logger, dict) and logger.get("name") == "wandb":
            return {**DEFAULTS, **logger}
    return None


def upload(
    runs: pd.DataFrame,
    table: pd.DataFrame,
    written: list[Path],
    out: Path,
    title: str | None,
    paths: list[str],
    forced: bool,
) -> Path | None:
    """Log the report to W&B if its runs used W&B (or ``forced``); returns the offline run's folder
    (None online, or when nothing was logged)."""
    logger = runs_logger(runs)
    if logger is None and not forced:
        return None
    logger = logger or dict(DEFAULTS)
    try:
        return _upload(logger, runs, table, written, out, title, paths)
    except Exception as err:  # noqa: BLE001 - W&B must never fail the report
        print(
            f"warning: the report was not logged to W&B ({type(err).__name__}: {err}); its files are in {out}",
            file=sys.stderr,
        )
        return None


def _upload(
    logger: dict[str, Any],
    runs: pd.DataFrame,
    table: pd.DataFrame,
    written: list[Path],
    out: Path,
    title: str | None,
    paths: list[str],
) -> Path | None:
    mode, auto = start_mode(str(logger["mode"]))
    if mode == "disabled":
        print("W&B: disabled; the report was not logged to W&B")
        return None
    import wandb

    exps = sorted(runs["experiment"].dropna().unique())
    kwargs = {
        "project": logger["project"],
        "entity": logger["entity"],
        "group": exps[0] if len(exps) == 1 else None,
        "name": f"report: {title or 'compress-report'}",
        "dir": str(out),
        "job_type": "report",
        "config": {"paths": [str(p) for p in paths], "runs": len(runs), "experiments": exps},
    }
    run, mode = init_run(wandb, kwargs, mode, auto, logger["init_timeout_s"])
    url, where = (run.url, None) if mode == "online" else (None, Path(run.dir).parent)
    try:
        images = {f"figures/{p.stem}": wandb.Image(str(p)) for p in written if p.suffix == ".png"}
        rows = table.astype(str)
        run.log({**images, "summary": wandb.Table(columns=[str(c) for c in rows.columns], data=rows.values.tolist())})
    finally:
        run.finish()
    if where is None:
        print(f"W&B: report logged to {url}")
        return None
    print(f"W&B: report logged ({len(images)} figures and the summary table); " + sync_line(where)[len("W&B: ") :])
    return where
