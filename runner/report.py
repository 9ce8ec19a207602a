"""``compress-report``: figures and tables from any set of run and sweep directories (design.md §6).

    compress-report outputs/multirun/2026-01-01/12-00-00 --out docs/results/comp_ams/fig1
    compress-report SWEEP_DIR --out DIR --target-loss 0.5          # seed 000 Fig. 2 (workers vary)
    compress-report RUN_DIR... --out DIR --metric test_acc --title "MNIST, CI scale"

Convex runs (seed 003: their summaries carry ``problem`` and ``theory``) get their own figures
and tables instead (``report_convex.py``): distance to x* against iterations and bits, fitted
rates beside the theorems', iterations and bits to ``--target-dist``, the kappa scaling, bits per
message beside Lemma 2.1, and IADE-SGD's mean square distance. Otherwise it writes into DIR: the
seed-000 figures as PNG and PDF (training loss and the metric against
epochs, training loss against iterations, the metric against bits sent per worker; each curve
the mean over seeds with a min–max band), ``summary.md`` (one row per method), when runs differ
in ``workers`` ``iterations_to_target.md``, and ``runs.csv`` (every metrics row with its run's
identity). A missing path or one holding no run: one line on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from compress_train.runner import report_convex, report_density
from compress_train.runner.report_data import ReportError, higher_is_better, load_runs, method_order
from compress_train.runner.report_plots import BAND_NOTE, BITS_LABEL, PERCENT, make_figures, metric_label


def _fmt(v: float, digits: int = 3) -> str:
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
    rows = []
    for m in order:
        mr = runs[runs["method"] == m]
        md = df[df["method"] == m]
        ok = mr[mr["status"] != "diverged"]
        final_loss = [_last(md[md["run_dir"] == r]["train_loss"]) if "train_loss" in md else math.nan
                      for r in ok["run_dir"]]
        seeds = ", ".join(str(s) for s in sorted(mr["seed"].dropna().unique()))
        steps = mr["steps"].dropna()
        row = {"method": m, "runs (seeds)": f"{len(mr)} ({seeds})", "status": _status_counts(mr["status"]),
               "steps": "–" if steps.empty else (f"{steps.min():.0f}" if steps.min() == steps.max()
                                                 else f"{steps.min():.0f}–{steps.max():.0f}"),
               "final train loss": mean_std(final_loss, total=len(mr)) if len(ok) else "diverged"}
        if has_metric:
            final_m = [_last(md[md["run_dir"] == r][metric]) * scale for r in ok["run_dir"]]
            best_m = [best(v) * scale for r in mr["run_dir"]
                      if len(v := md.loc[md["run_dir"] == r, metric].dropna().tolist())]
            dec = 2 if metric in PERCENT else 4
            row[f"final {mname}"] = mean_std(final_m, dec, total=len(mr)) if len(ok) else "diverged"
            row[f"best {mname}"] = mean_std(best_m, dec)
        row["bits up / worker (total)"] = _fmt(float(mr["total_bits_up"].mean()), 3)
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
    table.attrs["references"] = sorted(set(refs.values()) - {None})
    return table


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
        row = {"method": family, "n (workers)": n, "seeds reached": f"{len(reached)}/{len(iters)}",
               f"iterations to train loss ≤ {target:g}": mean_std(reached, decimals=0) if reached else "not reached"}
        if family not in base_iters and reached:
            base_iters[family] = (n, mean)
        n0, i0 = base_iters.get(family, (None, math.nan))
        row["speedup (ideal)"] = (f"{i0 / mean:.2f}× ({n / n0:g}×)" if reached and n0 and math.isfinite(i0)
                                  else "–")
        rows.append(row)
    return pd.DataFrame(rows)


def to_markdown(table: pd.DataFrame) -> str:
    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in table.itertuples(False)]
    return "\n".join(lines) + "\n"


def _header(title: str, runs: pd.DataFrame, paths: list[str]) -> list[str]:
    lines = [f"# {title}", "", f"Runs: {len(runs)} from " + ", ".join(f"`{p}`" for p in paths) + "."]
    for _, d in runs.drop_duplicates("dataset").iterrows():
        lines.append(f"Dataset: `{d['dataset']}`" + (f" ({d['dataset_description']})" if
                                                     isinstance(d["dataset_description"], str) else "") + ".")
    exps = [e for e in runs["experiment"].dropna().unique()]
    if exps:
        lines.append("Experiment: " + ", ".join(f"`{e}`" for e in exps) + ".")
    return lines + [""]


def _without_lr(label: str) -> str:
    """'TopK-EF-0.01 (lr=0.001)' -> 'TopK-EF-0.01' (the suffix the label clash resolution added)."""
    m = re.match(r"^(.*) \((.*)\)$", label)
    if not m:
        return label
    rest = [part for part in m.group(2).split(", ") if not part.startswith("lr=")]
    return f"{m.group(1)} ({', '.join(rest)})" if rest else m.group(1)


def keep_best_lr(df: pd.DataFrame, runs: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Per method family (identity without the lr), keep the lr whose runs have the best mean final
    ``metric``; a group with a diverged run ranks last. Returns the filtered frames and a note."""
    finals = df.dropna(subset=[metric]).groupby("run_dir")[metric].last() if metric in df else pd.Series(dtype=float)
    runs = runs.assign(final=runs["run_dir"].map(finals))
    sign = 1.0 if higher_is_better(metric) else -1.0
    keep, notes = [], []
    for _, fam in runs.groupby("family", sort=False):
        scores = {}
        for method, g in fam.groupby("method", sort=False):
            bad = (g["status"] == "diverged").any() or g["final"].isna().all()
            scores[method] = -np.inf if bad else sign * g["final"].mean()
        best = max(scores, key=scores.get)
        keep.append(best)
        grid = sorted(fam["lr"].dropna().unique())
        if len(grid) > 1:
            chosen = fam.loc[fam["method"] == best, "lr"].iloc[0]
            notes.append(f"{_without_lr(best)}: {chosen:g} (grid {', '.join(f'{v:g}' for v in grid)})")
    relabel = {m: _without_lr(m) for m in keep}
    runs = runs[runs["method"].isin(keep)].drop(columns="final").assign(method=lambda r: r["method"].map(relabel))
    df = df[df["method"].isin(keep)].assign(method=lambda d: d["method"].map(relabel))
    note = ("Learning rate per method: the best of the grid by mean final " + metric + " over seeds "
            "(the paper's protocol): " + "; ".join(notes) + ".") if notes else "Learning rate: one per method (no grid)."
    return df, runs, note


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="compress-report", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="RUN_OR_SWEEP_DIR", help="run directories and/or multirun sweep "
                   "directories (searched recursively for summary.json)")
    p.add_argument("--out", required=True, type=Path, help="folder for figures and tables (created)")
    p.add_argument("--target-loss", type=float, default=0.5, help="training loss for iterations_to_target.md "
                   "when runs differ in workers (default 0.5, seed 000 Fig. 2)")
    p.add_argument("--metric", default="test_acc", help="evaluation metric to plot and tabulate (default test_acc)")
    p.add_argument("--title", default=None, help="title prefix for figures and tables")
    p.add_argument("--target-dist", type=float, default=1e-6, help="convex runs: relative distance "
                   "||x-x*||/||x0-x*|| at which iterations and bits are counted (default 1e-6, seed 003 presets)")
    p.add_argument("--best-lr", action="store_true", help="methods run at several learning rates: keep, per "
                   "method, the lr with the best mean final metric over seeds (the papers' 'best of a grid')")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        df, runs = load_runs(args.paths)
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    lr_note = None
    if args.best_lr:
        df, runs, lr_note = keep_best_lr(df, runs, args.metric)
        print(lr_note)
    order = method_order(runs)
    workers_vary = runs["workers"].nunique() > 1
    exps = runs["experiment"].dropna().unique()
    title = args.title or (exps[0] if len(exps) == 1 else None)
    convex_lines: list[str] = []
    if report_convex.is_convex(runs):
        args.metric = "suboptimality"
        written, convex_lines = report_convex.convex_report(df, runs, order, out, title, args.target_dist,
                                                           to_markdown)
        convex_lines += ["", "## Per method, as for every report", ""]
    else:
        if args.metric not in df or df[args.metric].isna().all():
            print(f"note: no '{args.metric}' values in the runs; its figures and columns are left out")
        written = make_figures(df, runs, order, out, args.metric, title, args.target_loss, workers_vary)
        density_files, convex_lines = report_density.density_report(df, runs, order, out, args.metric, title,
                                                                    to_markdown)
        written += density_files

    table = summary_table(df, runs, order, args.metric)
    md = _header(title or "compress-report", runs, args.paths) + convex_lines + [
        "Per method (runs that differ only in seed): final values are the last logged row of each run "
        "(mean ± sample std over seeds, diverged runs excluded and counted in *status*); best is the best "
        f"evaluation of each run, averaged over seeds. Bits: {BITS_LABEL}. *bits vs full gradient* compares "
        "bits per iteration with the full-gradient method (" + (", ".join(table.attrs["references"]) or
                                                             "none among these runs") +
        "). Figures: " + BAND_NOTE + ".", "", *([lr_note, ""] if lr_note else []), to_markdown(table)]
    (out / "summary.md").write_text("\n".join(md))
    written.append(out / "summary.md")

    if workers_vary:
        if "train_loss" in df and df["train_loss"].notna().any():
            it = iterations_table(df, runs, order, args.target_loss)
            text = (f"# Iterations to training loss ≤ {args.target_loss:g}\n\nFirst logged iteration at which the "
                    "training loss (mean over the logging window) is at or below the target, per run; mean ± "
                    "sample std over the seeds that reached it. Speedup: iterations at the smallest n over "
                    "iterations at n (ideal: the ratio of the n).\n\n" + to_markdown(it))
            (out / "iterations_to_target.md").write_text(text)
            written.append(out / "iterations_to_target.md")
            print(text)
        else:
            print("note: skipped iterations_to_target.md: no 'train_loss' values in the runs")

    df.to_csv(out / "runs.csv", index=False)
    written.append(out / "runs.csv")
    print(to_markdown(table))
    print(f"wrote {len(written)} files:")
    for p in written:
        print(f"  {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
