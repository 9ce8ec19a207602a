"""``compress_train.load_runs``: the DataFrame ``compress-report`` draws its figures and tables from."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
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
# evaluation metrics a run may log: final_<m> and best_<m> columns in per="run" (when any run logged m)
EVAL_METRICS = (
    "test_acc",
    "test_loss",
    "perplexity",
    "hit_rate@10",
    "ndcg@10",
    "suboptimality",
    "dist_to_opt",
    "rel_dist",
)
LOWER_IS_BETTER = {"test_loss", "train_loss", "perplexity", "suboptimality", "dist_to_opt", "rel_dist"}
OPS = {">=": np.greater_equal, "<=": np.less_equal, ">": np.greater, "<": np.less}
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
    ``full_gradient`` (an uncompressed baseline); for each evaluation metric any run logged
    (``test_acc``, ``test_loss``, ``perplexity``, ``hit_rate@10``, ``ndcg@10``, ``suboptimality``,
    ``dist_to_opt``, ``rel_dist``) ``final_<metric>`` (its last logged value) and ``best_<metric>``
    (its best: the lowest for losses, perplexity and distances, else the highest), NaN for a run
    that never logged it; plus ``group`` and ``family`` (the method's
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

    Rank runs with ``runs.sort_values("best_test_acc")``; average seeds with ``by_method(runs)``;
    the bits to reach a target with ``bits_to(rows, "test_acc>=0.95")``.

    A missing path or one holding no finished run raises ``ReportError`` (from
    ``compress_train.runner.report.load``) naming it; unfinished runs are left out with a note on stderr.
    """
    if per not in PER:
        raise ValueError(f"`per` must be one of {list(PER)}, but is {per!r}")
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    rows, runs = _load_both(paths)
    return _with_eval_columns(runs, rows) if per == "run" else rows


def _with_eval_columns(runs: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """``runs`` plus final_<m> and best_<m> for every evaluation metric ``rows`` holds."""
    runs = runs.copy()
    for metric in EVAL_METRICS:
        if metric not in rows:
            continue
        logged = rows.dropna(subset=[metric]).sort_values("step", kind="stable").groupby("run_dir")[metric]
        best = logged.min() if metric in LOWER_IS_BETTER else logged.max()
        runs[f"final_{metric}"] = runs["run_dir"].map(logged.last())
        runs[f"best_{metric}"] = runs["run_dir"].map(best)
    return runs


def bits_to(rows: pd.DataFrame, target: str) -> pd.Series:
    """Per run (indexed by ``run_dir``): the cumulative ``bits_up`` per worker at the first logged row
    where ``target`` holds, e.g. ``"test_acc>=0.95"``, ``"train_loss<=0.3"``, ``"rel_dist<1e-6"``
    (``rows``: ``load_runs(..., per="row")``); ``inf`` for a run that never gets there. Named
    ``bits_to:<target>``, so that ``runs["run_dir"].map(bits_to(rows, t))`` adds it as a column."""
    found = re.fullmatch(r"\s*([\w@.]+)\s*(>=|<=|>|<)\s*(\S+)\s*", target)
    if found is None:
        raise ValueError(
            f"`target` must read like 'test_acc>=0.95' (metric, one of >= <= > <, number), but is {target!r}"
        )
    metric, op, value = found.group(1), found.group(2), float(found.group(3))
    if metric not in rows:
        raise ValueError(
            f"no run logged `{metric}`; the rows have {sorted(c for c in rows if rows[c].dtype.kind == 'f')}"
        )
    out = {}
    for run_dir, run in rows.sort_values("step", kind="stable").groupby("run_dir", sort=False):
        hit = run[OPS[op](run[metric].to_numpy(dtype=float), value)]
        out[run_dir] = float(hit["bits_up"].iloc[0]) if len(hit) else np.inf
    return pd.Series(out, name=f"bits_to:{target}", dtype=float)


def by_method(runs: pd.DataFrame, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per method (the report's legend order: full gradient first): ``n`` (its runs, e.g.
    seeds) and, for each of ``columns`` (default: every final_/best_ column, ``total_bits_up`` and any
    ``bits_to:`` column), ``<column>_mean`` and ``<column>_std`` (the sample std, NaN for one run) over
    its finite values, as the report's "mean ± std" tables. Diverged runs count: filter ``runs`` first
    to leave them out."""
    if columns is None:
        columns = [c for c in runs if c.startswith(("final_", "best_", "bits_to:")) or c == "total_bits_up"]
    columns = list(columns)
    missing = [c for c in columns if c not in runs]
    if missing:
        raise ValueError(f"`columns` {missing} are not columns of the runs; they have {list(runs.columns)}")
    order = list(dict.fromkeys(runs.sort_values("full_gradient", ascending=False, kind="stable")["method"]))
    values = runs[["method", *columns]].replace([np.inf, -np.inf], np.nan)
    groups = values.groupby("method", sort=False)
    out = pd.DataFrame({"n": runs.groupby("method", sort=False).size()})
    for c in columns:
        out[f"{c}_mean"] = groups[c].mean()
        out[f"{c}_std"] = groups[c].std(ddof=1)
    return out.loc[order]
