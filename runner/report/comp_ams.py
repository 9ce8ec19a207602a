"""``compress-report``'s default figures for networks, in the style of ``comp_ams`` (On Distributed
Adaptive Optimization with Gradient Compression, COMP-AMS): Fig. 1 (training loss and test
accuracy against epochs, no-EF curves dashed), Fig. 2 (training loss against iterations, log y;
with workers varying, the iterations to a target loss) and Fig. 3 (test accuracy against bits
sent per worker, log x). Every curve is the mean over a method's seeds aligned on the step,
with a min–max band."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from compress_train.runner.report.plots import BITS_LABEL, curve_plot, file_stem, has_values
from compress_train.runner.report.tables import mean_std, metric_label, to_markdown

TRAIN_LOSS_LABEL = "training loss (mean over each logging window)"


def make_figures(
    df: pd.DataFrame,
    runs: pd.DataFrame,
    order: list[str],
    out: Path,
    metric: str,
    title: str | None,
    target_loss: float | None,
    workers_vary: bool,
) -> list[Path]:
    """The four ``comp_ams`` figures; a figure whose metric is absent is skipped with a note."""
    prefix = f"{title}: " if title else ""
    written: list[Path] = []
    mlabel = metric_label(metric)
    specs: list[tuple[str, str, str, str, str, str, dict[str, Any]]] = [
        (
            "train_loss_vs_epochs",
            "epoch",
            "train_loss",
            "epochs",
            TRAIN_LOSS_LABEL,
            "Training loss vs epochs",
            dict(logy=True),
        ),
        (
            f"{file_stem(metric)}_vs_epochs",
            "epoch",
            metric,
            "epochs",
            mlabel,
            f"{mlabel.split(' (')[0].capitalize()} vs epochs",
            {},
        ),
        (
            "train_loss_vs_iterations",
            "step",
            "train_loss",
            "iterations (optimizer steps)",
            TRAIN_LOSS_LABEL,
            "Training loss vs iterations",
            dict(
                logy=True,
                hline=target_loss if workers_vary else None,
                hline_label=f"target loss {target_loss:g}" if workers_vary and target_loss is not None else None,
            ),
        ),
        (
            f"{file_stem(metric)}_vs_bits",
            "bits_up",
            metric,
            BITS_LABEL,
            mlabel,
            f"{mlabel.split(' (')[0].capitalize()} vs communication",
            dict(logx=True),
        ),
    ]
    for stem, x, y, xlabel, ylabel, ttl, kw in specs:
        if not has_values(df, x, y):
            missing = [c for c in (x, y) if not has_values(df, c)]
            print(f"note: skipped {stem}: no '{', '.join(missing)}' values in the runs")
            continue
        files = curve_plot(
            df, runs, order, x, y, xlabel=xlabel, ylabel=ylabel, title=prefix + ttl, out=out, stem=stem, **kw
        )
        if not files:
            print(f"note: skipped {stem}: no plottable points")
        written += files
    return written


def first_crossing(steps: pd.Series, loss: pd.Series, target: float) -> float:
    hit = steps[(loss <= target).to_numpy()]
    return float(hit.min()) if len(hit) else math.nan


def iterations_table(df: pd.DataFrame, runs: pd.DataFrame, order: list[str], target: float) -> pd.DataFrame:
    """Per method and n: first iteration whose logged training loss is <= target (mean over seeds)."""
    rows, base_iters = [], {}
    workers = runs.groupby("method")["workers"].first()
    family_of = {m: m.replace(f", n={workers[m]}", "") for m in order}
    families = list(dict.fromkeys(family_of.values()))
    for m in sorted(order, key=lambda m: (families.index(family_of[m]), workers[m])):
        mr = runs[runs["method"] == m]
        n, family = int(workers[m]), family_of[m]
        iters = []
        for r in mr["run_dir"]:
            d = df[df["run_dir"] == r].dropna(subset=["train_loss"]).sort_values("step")
            iters.append(first_crossing(d["step"], d["train_loss"], target))
        reached = [i for i in iters if math.isfinite(i)]
        mean = float(np.mean(reached)) if reached else math.nan
        row = {
            "method": family,
            "n (workers)": n,
            "seeds reached": f"{len(reached)}/{len(iters)}",
            f"iterations to train loss ≤ {target:g}": mean_std(reached, decimals=0) if reached else "not reached",
        }
        if family not in base_iters and reached:
            base_iters[family] = (n, mean)
        n0, i0 = base_iters.get(family, (None, math.nan))
        row["speedup (ideal)"] = f"{i0 / mean:.2f}× ({n / n0:g}×)" if reached and n0 and math.isfinite(i0) else "–"
        rows.append(row)
    return pd.DataFrame(rows)


def iterations_report(
    df: pd.DataFrame, runs: pd.DataFrame, order: list[str], out: Path, target_loss: float
) -> list[Path]:
    """``iterations_to_target.md`` (``comp_ams`` Fig. 2's speedup in workers) when the runs have a
    training loss; the files written."""
    written: list[Path] = []
    if "train_loss" in df and df["train_loss"].notna().any():
        it = iterations_table(df, runs, order, target_loss)
        text = (
            f"# Iterations to training loss ≤ {target_loss:g}\n\nFirst logged iteration at which the "
            "training loss (mean over the logging window) is at or below the target, per run; mean ± "
            "sample std over the seeds that reached it. Speedup: iterations at the smallest n over "
            "iterations at n (ideal: the ratio of the n).\n\n" + to_markdown(it)
        )
        (out / "iterations_to_target.md").write_text(text)
        written.append(out / "iterations_to_target.md")
        print(text)
    else:
        print("note: skipped iterations_to_target.md: no 'train_loss' values in the runs")
    return written
