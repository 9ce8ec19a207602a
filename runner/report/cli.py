"""``compress-report``: figures and tables from any set of run and sweep directories.

    compress-report outputs/multirun/2026-01-01/12-00-00 --out docs/results/comp_ams/fig1
    compress-report SWEEP_DIR --out DIR --target-loss 0.5          # comp_ams Fig. 2 (workers vary)
    compress-report RUN_DIR... --out DIR --metric test_acc --title "MNIST, CI scale"
    compress-report SWEEP_DIR --out DIR --wandb    # also to W&B (automatic for logger=wandb runs): wandb_upload.py

Convex runs (``aiade``: their summaries carry ``problem`` and ``theory``) get their own figures
and tables instead (``aiade.py``): distance to x* against iterations and bits, fitted
rates beside the theorems', iterations and bits to ``--target-dist``, the kappa scaling, bits per
message beside Lemma 2.1, and IADE-SGD's mean square distance. Otherwise it writes into DIR: the
``comp_ams`` figures as PNG and PDF (training loss and the metric against
epochs, training loss against iterations, the metric against bits sent per worker; each curve
the mean over seeds with a min–max band; ``comp_ams.py``), with error feedback the
``hard_threshold`` figures and Table 1 (``hard_threshold.py``), for ``def/*`` presets its Tables 1-4
beside the paper's numbers and Figures 1 and 3 (``detached_ef.py``, ``tables.md``), ``summary.md`` (one row per
method), when runs differ in ``workers`` ``iterations_to_target.md``, and ``runs.csv`` (every
metrics row with its run's identity). A missing path or one holding no run: one line on stderr
and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from compress_train.runner.report import aiade, comp_ams, detached_ef, hard_threshold, wandb_upload
from compress_train.runner.report.load import ReportError, keep_best_lr, load_runs, method_order
from compress_train.runner.report.plots import BAND_NOTE, BITS_LABEL, FORMAT_CHOICES, FORMATS, figure_formats
from compress_train.runner.report.tables import header, summary_table, to_markdown

TASK_METRICS = ("test_acc", "perplexity", "hit_rate@10")  # a classifier's, a language model's, NCF's


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="compress-report",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "paths",
        nargs="+",
        metavar="RUN_OR_SWEEP_DIR",
        help="run directories and/or multirun sweep directories (searched recursively for summary.json)",
    )
    p.add_argument("--out", required=True, type=Path, help="folder for figures and tables (created)")
    p.add_argument(
        "--target-loss",
        type=float,
        nargs="+",
        default=[0.5],
        help="training loss(es) for iterations_to_target.md when runs differ in workers, one table each "
        "(default 0.5, comp_ams Fig. 2's; the figures draw the first)",
    )
    p.add_argument(
        "--metric",
        default=None,
        help="evaluation metric to plot and tabulate (default: the runs' own, the first of "
        f"{', '.join(TASK_METRICS)} they log)",
    )
    p.add_argument(
        "--formats",
        nargs="+",
        choices=FORMAT_CHOICES,
        default=list(FORMATS),
        help=f"the files of every figure (default: {' '.join(FORMATS)})",
    )
    p.add_argument("--title", default=None, help="title prefix for figures and tables")
    p.add_argument(
        "--target-dist",
        type=float,
        default=1e-6,
        help="convex runs: relative distance "
        "||x-x*||/||x0-x*|| at which iterations and bits are counted (default 1e-6, the aiade presets)",
    )
    p.add_argument(
        "--best-lr",
        action="store_true",
        help="methods run at several learning rates: keep, per "
        "method, the lr with the best mean final metric over seeds (the papers' 'best of a grid')",
    )
    p.add_argument(
        "--wandb",
        action="store_true",
        help="log the figures and summary table to a W&B run "
        "(job_type report) even if the runs did not use logger=wandb (they are logged when they did)",
    )
    p.add_argument(
        "--time-axis",
        choices=["projected", "measured"],
        default="projected",
        help="def figures: time as compute + compression + the network model's communication time "
        "(projected, when the runs set network.bandwidth_gbps) or this machine's wall clock (measured)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with figure_formats(args.formats):
        return report(args)


def report(args: argparse.Namespace) -> int:
    """The report of ``args`` (build_parser's): figures, tables and summary under ``args.out``."""
    try:
        df, runs = load_runs(args.paths)
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out: Path = args.out
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write_test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        print(f"error: --out {out} cannot be written: {err.strerror or err}", file=sys.stderr)
        return 2
    if args.metric is None:
        args.metric = next((m for m in TASK_METRICS if m in df and df[m].notna().any()), TASK_METRICS[0])
    lr_note = None
    if args.best_lr:
        df, runs, lr_note = keep_best_lr(df, runs, args.metric)
        print(lr_note)
    order = method_order(runs)
    workers_vary = runs["workers"].nunique() > 1
    exps = runs["experiment"].dropna().unique()
    title = args.title or (exps[0] if len(exps) == 1 else None)
    convex_lines: list[str] = []
    if aiade.is_convex(runs):
        args.metric = "suboptimality"
        written, convex_lines = aiade.convex_report(df, runs, order, out, title, args.target_dist)
        convex_lines += ["", "## Per method, as for every report", ""]
    else:
        if args.metric not in df or df[args.metric].isna().all():
            print(f"note: no '{args.metric}' values in the runs; its figures and columns are left out")
        written = comp_ams.make_figures(df, runs, order, out, args.metric, title, args.target_loss[0], workers_vary)
        density_files, convex_lines = hard_threshold.density_report(df, runs, order, out, args.metric, title)
        written += density_files
        if detached_ef.is_def(runs):
            def_files, def_lines = detached_ef.def_report(df, runs, out, args.time_axis)
            written += def_files
            convex_lines = [*convex_lines, *def_lines]

    table = summary_table(df, runs, order, args.metric)
    md = (
        header(title or "compress-report", runs, args.paths)
        + convex_lines
        + [
            "Per method (runs that differ only in seed): final values are the last logged row of each run "
            "(mean ± sample std over seeds, diverged runs excluded and counted in *status*); best is the best "
            f"evaluation of each run, averaged over seeds. Bits: {BITS_LABEL}. *bits vs full gradient* compares "
            "bits per iteration with the full-gradient method ("
            + (", ".join(table.attrs["references"]) or "none among these runs")
            + "). Figures: "
            + BAND_NOTE
            + ".",
            "",
            *([lr_note, ""] if lr_note else []),
            to_markdown(table),
        ]
    )
    (out / "summary.md").write_text("\n".join(md))
    written.append(out / "summary.md")

    if workers_vary:
        written += comp_ams.iterations_report(df, runs, order, out, args.target_loss)

    df.to_csv(out / "runs.csv", index=False)
    written.append(out / "runs.csv")
    print(to_markdown(table))
    print(f"wrote {len(written)} files:")
    for p in written:
        print(f"  {p}")
    wandb_upload.upload(runs, table, written, out, title, args.paths, forced=args.wandb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
