"""``compress_train.load_runs``: the DataFrame ``compress-report`` draws its figures and tables from."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from compress_train.runner.report import load as report_load
from compress_train.runner.report.load import load_runs as _load_both

RUN_COLUMNS = [
    *report_load.RUN_COLUMNS,  # the identity columns the report keys on, then what load_runs adds
    "lr",
    "steps",
    "total_bits_up",
    "final_train_loss",
    "full_gradient",
]
ROW_COLUMNS = [
    "run_dir",
    "experiment",
    "method",
    "algo",
    "compressor",
    "ef",
    "workers",
    "seed",
    "dataset",
    "model",
    "status",
    "step",
    "epoch",
    "samples",
    "train_loss",
    "bits_up",
    "bits_down",
    "time_s",
]
PER = ("run", "row")


def load_runs(path: str | Path | Iterable[str | Path], per: str = "run") -> pd.DataFrame:
    """Every finished run (status completed, converged or diverged) under ``path``: a run directory,
    a sweep directory (searched recursively for ``summary.json``) or a list of them.

    ``per="run"``: one row per run. Columns: ``run_dir``; ``experiment`` (the preset, or None);
    ``method`` (the label, the same legend name as the report's: a preset's or method bundle's
    ``label``, else derived, e.g. ``TopK-EF-0.01``); ``algo``, ``compressor``, ``ef``, ``workers``,
    ``seed``, ``dataset``, ``model``, ``lr``; ``status``; ``steps`` (iterations run);
    ``total_bits_up`` (bits sent per worker over the run, from the payloads); ``final_train_loss``;
    ``full_gradient`` (an uncompressed baseline); plus ``group`` and ``family`` (the method's
    identity as JSON, with and without the lr), ``dataset_description`` and, for convex runs,
    ``problem_kind``, ``kappa``, ``dim``, ``theory_rate``, ``bound0``, ``tol``.

    ``per="row"``: one row per ``metrics.jsonl`` row, with the run's ``run_dir``, ``experiment``,
    ``method``, ``algo``, ``compressor``, ``ef``, ``workers``, ``seed``, ``dataset``, ``model`` and
    ``status``, then the metrics as logged (numbers; NaN where a row has none): ``step``, ``epoch``,
    ``samples`` (training samples seen by all workers), ``lr``, ``train_loss``, the task's
    evaluation (``test_loss``/``test_acc``, ``perplexity``, ``hit_rate@10``, ``rel_dist``: on
    evaluation rows only), ``bits_up``/``bits_down`` (per worker, cumulative; ``*_step``: this
    step's), ``elements_up``, ``wire_bytes``, ``density``, ``error_norm``, ``time_s`` (wall clock
    since the start) and ``time_compute_s``/``time_compress_s``/``time_comm_s``, and any other
    metric a run logged (docs/architecture.md §5 lists them).

    A missing path or one holding no finished run raises ``ReportError`` (from
    ``compress_train.runner.report.load``) naming it; unfinished runs are left out with a note on stderr.
    """
    if per not in PER:
        raise ValueError(f"`per` must be one of {list(PER)}, but is {per!r}")
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    rows, runs = _load_both(paths)
    return runs if per == "run" else rows
