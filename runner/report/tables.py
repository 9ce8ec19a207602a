"""Markdown tables for ``compress-report``: the per-method summary every report writes, the
number formats (mean ± std over seeds, significant figures) and the metric names."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from compress_train.runner.report.load import higher_is_better

PERCENT = {"test_acc", "hit_rate@10"}
METRIC_LABELS = {
    "test_acc": "test accuracy (%)",
    "test_loss": "test loss (cross-entropy)",
    "perplexity": "test perplexity",
    "hit_rate@10": "hit rate @10 (%)",
    "suboptimality": "suboptimality f(x) − f*",
    "dist_to_opt": "distance to optimum ‖x − x*‖",
}


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric.replace("_", " "))


def fmt_num(v: float, digits: int = 3) -> str:
    """``v`` to ``digits`` significant figures; '–' for None, NaN and inf."""
    return "–" if v is None or not math.isfinite(v) else f"{v:.{digits}g}"


def mean_std(values: list[float], decimals: int = 4, total: int | None = None) -> str:
    """'m ± s' (sample std over seeds) of the finite values; '(k/N runs)' when some are missing."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return "–"
    text = f"{np.mean(vals):.{decimals}f}"
    if len(vals) > 1:
        text += f" ± {np.std(vals, ddof=1):.{decimals}f}"
    if total is not None and len(vals) < total:
        text += f" ({len(vals)}/{total} runs)"
    return text


def _last(series: pd.Series) -> float:
    s = series.replace([np.inf, -np.inf], np.nan).dropna()
    return float(s.iloc[-1]) if len(s) else float("nan")


def _status_counts(statuses: pd.Series) -> str:
    counts = statuses.value_counts()
    return ", ".join(f"{n} {s}" for s, n in counts.items())


def _reference(runs: pd.DataFrame, row: pd.Series) -> str | None:
    """The full-gradient method to compare bits with: same dataset and workers if possible."""
    full = runs[runs["full_gradient"]]
    for cond in (
        (full["dataset"] == row["dataset"]) & (full["workers"] == row["workers"]),
        full["dataset"] == row["dataset"],
        pd.Series(True, index=full.index),
    ):
        if cond.any():
            return full[cond]["method"].iloc[0]
    return None


def summary_table(df: pd.DataFrame, runs: pd.DataFrame, order: list[str], metric: str) -> pd.DataFrame:
    """One row per method, as written to summary.md (strings, ready to print)."""
    scale = 100.0 if metric in PERCENT else 1.0
    best = max if higher_is_better(metric) else min
    per_step = (runs["total_bits_up"] / runs["steps"].where(runs["steps"] > 0)).groupby(runs["method"]).mean()
    has_metric = metric in df and df[metric].notna().any()
    mname = metric_label(metric)
    refs = {m: _reference(runs, runs[runs["method"] == m].iloc[0]) for m in order}
    several_refs = len(set(refs.values()) - {None}) > 1
    lr_grid = "best_lr" in runs and runs["best_lr"].notna().any()  # --best-lr over a grid: the lr chosen
    rows = []
    for m in order:
        mr = runs[runs["method"] == m]
        md = df[df["method"] == m]
        ok = mr[mr["status"] != "diverged"]
        final_loss = [
            _last(md[md["run_dir"] == r]["train_loss"]) if "train_loss" in md else math.nan for r in ok["run_dir"]
        ]
        seeds = ", ".join(str(s) for s in sorted(mr["seed"].dropna().unique()))
        steps = mr["steps"].dropna()
        row = {
            "method": m,
            "runs (seeds)": f"{len(mr)} ({seeds})",
            "status": _status_counts(mr["status"]),
            **({"lr (best of grid)": next(iter(mr["best_lr"].dropna()), "–")} if lr_grid else {}),
            "steps": "–"
            if steps.empty
            else (f"{steps.min():.0f}" if steps.min() == steps.max() else f"{steps.min():.0f}–{steps.max():.0f}"),
            "final train loss": mean_std(final_loss, total=len(mr)) if len(ok) else "diverged",
        }
        if has_metric:
            final_m = [_last(md[md["run_dir"] == r][metric]) * scale for r in ok["run_dir"]]
            best_m = [
                best(v) * scale for r in mr["run_dir"] if len(v := md.loc[md["run_dir"] == r, metric].dropna().tolist())
            ]
            dec = 2 if metric in PERCENT else 4
            row[f"final {mname}"] = mean_std(final_m, dec, total=len(mr)) if len(ok) else "diverged"
            row[f"best {mname}"] = mean_std(best_m, dec)
        row["bits up / worker (total)"] = fmt_num(float(mr["total_bits_up"].mean()), 3)
        ref = refs[m]
        if ref is not None:
            r = per_step.get(ref, math.nan) / per_step.get(m, math.nan)
            if m == ref:
                text = "1× (reference)"
            elif not math.isfinite(r) or r <= 0:
                text = "–"
            elif abs(r - 1) < 0.005:
                text = "1× (same)"
            else:
                text = f"{r:.3g}× fewer" if r >= 1 else f"{1 / r:.3g}× more"
                if several_refs:
                    text += f" than {ref}"
            row["bits vs full gradient"] = text
        rows.append(row)
    table = pd.DataFrame(rows).fillna("–")
    table.attrs["references"] = sorted(r for r in set(refs.values()) if r is not None)
    return table


def to_markdown(table: pd.DataFrame) -> str:
    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in table.itertuples(False)]
    return "\n".join(lines) + "\n"


def header(title: str, runs: pd.DataFrame, paths: list[str]) -> list[str]:
    lines = [f"# {title}", "", f"Runs: {len(runs)} from " + ", ".join(f"`{p}`" for p in paths) + "."]
    for _, d in runs.drop_duplicates("dataset").iterrows():
        lines.append(
            f"Dataset: `{d['dataset']}`"
            + (f" ({d['dataset_description']})" if isinstance(d["dataset_description"], str) else "")
            + "."
        )
    exps = [e for e in runs["experiment"].dropna().unique()]
    if exps:
        lines.append("Experiment: " + ", ".join(f"`{e}`" for e in exps) + ".")
    return lines + [""]
