"""``compress-report`` for convex runs, in the style of ``aiade`` (A Communication Efficient
Gradient Compression Algorithm for Distributed Learning): distances to x*, fitted linear rates
beside the theorems' rates, iterations and bits to a target accuracy, the kappa scaling, bits
per message beside Lemma 2.1, and IADE-SGD's mean square distance beside Theorem 5.2; runs with
error feedback add ``hard_threshold`` Fig. 1 and its density table (``hard_threshold.py``).

Everything is read off the runs: ``rel_dist`` = ||x_k - x*|| / ||x_0 - x*|| and the bit
counters in ``metrics.jsonl``, the problem's constants and the algorithm's proven rate in
``summary.json`` (``problem``, ``theory``). A fitted rate is exp(slope) of a least-squares
line through log rel_dist against k over the logged rows after the transient (from the first
row at or below 1e-2 on; all rows if fewer than five remain), so a method stalled at a floor
shows a rate near 1.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from compress_train.runner.report import hard_threshold  # noqa: E402
from compress_train.runner.report.comp_ams import (  # noqa: E402
    MAX_SERIES,
    base_label,
    facets,
    figure_title,
    method_styles,
    series_figure,
)
from compress_train.runner.report.load import aggregate  # noqa: E402
from compress_train.runner.report.plots import (  # noqa: E402
    BAND_NOTE,
    CONVEX_BITS_LABEL,
    RC,
    _colors,
    put_title,
    save_figure,
)
from compress_train.runner.report.rules import TRANSIENT, fitted_rate  # noqa: E402, F401  (the shared rate fit)
from compress_train.runner.report.tables import fmt_num, to_markdown  # noqa: E402

# The iteration count's growth with kappa that the theory gives each method (``aiade`` Thms 3.1, 4.1).
THEORY_SLOPE = {"gd": 1.0, "iade": 1.0, "agd": 0.5, "aiade": 0.5}
DIST_LABEL = "relative distance ‖x_k − x*‖ / ‖x_0 − x*‖"


def is_convex(runs: pd.DataFrame) -> bool:
    return "problem_kind" in runs and runs["problem_kind"].notna().any()


def first_hit(d: pd.DataFrame, target: float) -> pd.Series | None:
    hit = d[d["rel_dist"] <= target]
    return hit.iloc[0] if len(hit) else None


def per_run(df: pd.DataFrame, runs: pd.DataFrame, target: float) -> pd.DataFrame:
    """One row per run: fitted rate, iterations and bits to ``target``, bits per iteration."""
    rows = []
    for _, r in runs.iterrows():
        d = df[df["run_dir"] == r["run_dir"]].dropna(subset=["rel_dist"]).sort_values("step")
        hit = first_hit(d, target) if len(d) else None
        steps = d[d["step"] > 0]
        squared = "bound0" in r and pd.notna(r["bound0"])  # Theorem 5.2 bounds E||x - x*||^2
        rows.append(
            {
                **r.to_dict(),
                "theory_rate_dist": math.sqrt(r["theory_rate"]) if squared else r["theory_rate"],
                "fitted_rate": fitted_rate(d["step"].to_numpy(float), d["rel_dist"].to_numpy(float)),
                "iters": hit["step"] if hit is not None else math.nan,
                "bits_to_target": hit["bits_up"] if hit is not None else math.nan,
                "bits_down_to_target": hit["bits_down"] if hit is not None else math.nan,
                "bits_per_iter": float(steps["bits_up"].iloc[-1] / steps["step"].iloc[-1]) if len(steps) else math.nan,
                "lemma_per_iter": float(steps["bits_lemma21"].iloc[-1] / steps["step"].iloc[-1])
                if len(steps) and "bits_lemma21" in steps and steps["bits_lemma21"].notna().any()
                else math.nan,
                "final_rel": float(d["rel_dist"].iloc[-1]) if len(d) else math.nan,
            }
        )
    return pd.DataFrame(rows)


def _mean(values: pd.Series) -> float:
    v = values.dropna()
    return float(v.mean()) if len(v) else math.nan


def rates_table(pr: pd.DataFrame, order: list[str], target: float) -> pd.DataFrame:
    rows = []
    for (dataset, method), g in sorted(
        pr.groupby(["dataset", "method"]), key=lambda t: (t[0][0], order.index(t[0][1]))
    ):
        reached = g["iters"].notna().sum()
        rows.append(
            {
                "problem": dataset,
                "method": method,
                "kappa": fmt_num(_mean(g["kappa"]), 4),
                "status": ", ".join(f"{n} {s}" for s, n in g["status"].value_counts().items()),
                "theory rate": fmt_num(_mean(g["theory_rate_dist"]), 6),
                "fitted rate": fmt_num(_mean(g["fitted_rate"]), 6),
                f"iterations to {target:g}": fmt_num(_mean(g["iters"]), 6) if reached else "not reached",
                f"bits up / worker to {target:g}": fmt_num(_mean(g["bits_to_target"]), 4) if reached else "not reached",
                "bits up / iteration": fmt_num(_mean(g["bits_per_iter"]), 4),
                "Lemma 2.1 bits / iteration": fmt_num(_mean(g["lemma_per_iter"]), 4),
                "final rel. distance": fmt_num(_mean(g["final_rel"]), 3),
            }
        )
    return pd.DataFrame(rows)


def kappa_table(pr: pd.DataFrame, order: list[str]) -> tuple[pd.DataFrame, dict[str, float]]:
    """Iterations to the target per kappa and method, and the log-log slope per method."""
    slopes, rows = {}, []
    base = pr.assign(family=pr["method"].str.replace(r" \(.*\)$", "", regex=True))
    for fam, g in base.groupby("family", sort=False):
        pts = g.groupby("kappa")["iters"].mean().dropna()
        slope = float(np.polyfit(np.log(pts.index), np.log(pts.to_numpy()), 1)[0]) if len(pts) >= 2 else math.nan
        slopes[fam] = slope
        algo = g["algo"].iloc[0]
        row = {
            "method": fam,
            **{f"kappa={k:g}": fmt_num(v, 6) for k, v in g.groupby("kappa")["iters"].mean().items()},
            "fitted slope": fmt_num(slope, 3),
            "theory slope": fmt_num(THEORY_SLOPE.get(algo, math.nan), 2),
        }
        rows.append(row)
    return pd.DataFrame(rows).fillna("not reached"), slopes


def kappa_figure(
    pr: pd.DataFrame, runs: pd.DataFrame, slopes: dict[str, float], out: Path, title: str, target: float
) -> list[Path]:
    """Iterations to ``target`` against kappa, one line per method family (its colour as in every other
    figure of the report), at most ``MAX_SERIES`` per axis."""
    base = pr.assign(family=pr["method"].str.replace(r" \(.*\)$", "", regex=True))
    fams = list(base.groupby("family", sort=False))
    methods = list(runs["method"].unique())
    style = method_styles(runs, methods)
    colour: dict[str, dict] = {}
    for m in methods:
        colour.setdefault(base_label(m), style[m])
    chunks = [fams[i : i + MAX_SERIES] for i in range(0, len(fams), MAX_SERIES)] or [[]]
    with plt.rc_context(RC):
        fig, axes = plt.subplots(1, len(chunks), figsize=(7.5 * len(chunks), 5), layout="constrained", squeeze=False)
        for ax, chunk in zip(axes[0], chunks):
            for fam, g in chunk:
                pts = g.groupby("kappa")["iters"].mean().dropna()
                st = colour.get(fam, {})
                ax.plot(
                    pts.index,
                    pts.to_numpy(),
                    marker=st.get("marker", "o"),
                    color=st.get("color"),
                    label=f"{fam} (slope {slopes[fam]:.2f})",
                )
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("condition number κ = L/μ")
            ax.set_ylabel(f"iterations to relative distance {target:g}")
            ax.legend(frameon=False)
        put_title(fig, figure_title(title, runs))
        paths = save_figure(fig, out, "iterations_vs_kappa")
        plt.close(fig)
    return paths


def bits_figure(
    df: pd.DataFrame, runs: pd.DataFrame, order: list[str], out: Path, title: str, window: int = 20
) -> list[Path]:
    """Bits of each uplink message against k (mean over workers and seeds; thin: every step, thick:
    a running mean over ``window`` steps) and the Lemma 2.1 figure for the same vectors, dashed.
    The x-axis spans the double-encoding runs (the methods the figure is about)."""
    style = method_styles(runs, order)
    rows = facets(runs, order, MAX_SERIES // 2)  # two labelled lines per method
    with plt.rc_context(RC):
        fig, axes = plt.subplots(
            len(rows), 1, figsize=(9.5, 5.2 if len(rows) == 1 else 3.9 * len(rows)), layout="constrained", squeeze=False
        )
        for (facet, methods), ax in zip(rows, axes[:, 0]):
            span = 0.0
            colours = [style[m]["color"] for m in methods]
            if len(set(map(str, colours))) < len(
                colours
            ):  # a method per colour here: line styles mean the two bit counts
                colours = [_colors("tab10")[i % 10] for i in range(len(methods))]
            for m, colour in zip(methods, colours):
                sub = df[(df["method"] == m) & (df["step"] > 0)]
                a = aggregate(sub, "step", "bits_up_step")
                if a.empty:
                    continue
                ax.plot(a["x"], a["mean"], color=colour, alpha=0.25, linewidth=0.8)
                ax.plot(a["x"], a["mean"].rolling(window, min_periods=1).mean(), color=colour, label=f"{m}: real code")
                if "bits_lemma21_step" in sub and sub["bits_lemma21_step"].notna().any():
                    lem = aggregate(sub, "step", "bits_lemma21_step")
                    ax.plot(
                        lem["x"],
                        lem["mean"].rolling(window, min_periods=1).mean(),
                        color=colour,
                        linestyle="--",
                        label=f"{m}: Lemma 2.1 figure",
                    )
                    span = max(span, float(lem["x"].max()))
            if span:
                ax.set_xlim(0, span * 1.05)
            ax.set_yscale("log")
            ax.set_xlabel("iteration k")
            ax.set_ylabel("bits per uplink message (per worker)")
            if len(rows) > 1:
                ax.set_title(facet)
            ax.legend(
                loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title=f"running mean over {window} steps"
            )
        put_title(fig, figure_title(title, runs))
        paths = save_figure(fig, out, "bits_per_iteration")
        plt.close(fig)
    return paths


def sq_distance_figure(df: pd.DataFrame, runs: pd.DataFrame, out: Path, title: str) -> list[Path]:
    """E||x_k - x*||^2 (mean over seeds, min-max band) beside each method's bound rate^k bound0: Theorem
    5.2's c'^k bound0 for IADE-SGD, Lemma 9.1's c^k ||x_0 - x*||^2 for the non-quantized SGD."""
    bounded = runs[runs["bound0"].notna()]
    order = list(dict.fromkeys(bounded["method"]))
    style = method_styles(runs, list(dict.fromkeys(runs["method"])))
    chunks = [order[i : i + MAX_SERIES // 2] for i in range(0, len(order), MAX_SERIES // 2)] or [[]]
    with plt.rc_context(RC):
        fig, axes = plt.subplots(len(chunks), 1, figsize=(9, 5.2 * len(chunks)), layout="constrained", squeeze=False)
        for chunk, ax in zip(chunks, axes[:, 0]):
            for m in chunk:
                mr = bounded[bounded["method"] == m]
                sub = df[df["method"] == m].assign(sq=lambda d: d["dist_to_opt"] ** 2)
                a = aggregate(sub, "step", "sq")
                colour = style[m]["color"]
                ax.plot(a["x"], a["mean"], color=colour, label=f"{m}: mean of {len(mr)} seeds")
                ax.fill_between(a["x"], a["lo"], a["hi"], color=colour, alpha=0.2, linewidth=0)
                k = a["x"].to_numpy()
                ax.plot(
                    k,
                    mr["theory_rate"].mean() ** k * mr["bound0"].mean(),
                    color=colour,
                    linestyle=":",
                    label=f"{m}: its theorem's bound on E‖x_k − x*‖²",
                )
            ax.set_yscale("log")
            ax.set_xlabel("iteration k")
            ax.set_ylabel("‖x_k − x*‖²")
            ax.legend(title=BAND_NOTE, frameon=False)
        put_title(fig, figure_title(title, runs))
        paths = save_figure(fig, out, "sq_distance_vs_iterations")
        plt.close(fig)
    return paths


def convex_report(
    df: pd.DataFrame, runs: pd.DataFrame, order: list[str], out: Path, title: str | None, target: float
) -> tuple[list[Path], list[str]]:
    """Figures and Markdown sections for convex runs; returns (files written, Markdown lines)."""
    prefix = f"{title}: " if title else ""
    written: list[Path] = []
    pr = per_run(df, runs, target)
    # a kappa sweep: one kind of problem at several condition numbers (not two different problems)
    kappa_varies = bool((runs.groupby(["problem_kind", "dim"])["kappa"].nunique() > 1).any())
    for dataset in runs["dataset"].unique():
        d, r = df[df["dataset"] == dataset], runs[runs["dataset"] == dataset]
        o = [m for m in order if m in set(r["method"])]
        short = {m: re.sub(r" \(dataset=[^)]*\)$", "", m) for m in o}  # the title names the problem
        if len(set(short.values())) == len(o):
            d, r, o = (
                d.assign(method=d["method"].map(short)),
                r.assign(method=r["method"].map(short)),
                list(short.values()),
            )
        tag = "" if runs["dataset"].nunique() == 1 else f"_{dataset}"
        for x, stem, xlabel, logx in (
            ("step", "distance_vs_iterations", "iteration k", False),
            ("bits_up", "distance_vs_bits", CONVEX_BITS_LABEL, True),
        ):
            panel = dict(x=x, y="rel_dist", xlabel=xlabel, ylabel=DIST_LABEL, logx=logx, logy=True)
            if not kappa_varies:
                panel.update(hline=target, hline_label=f"target {target:g}")
            written += series_figure(d, r, o, [panel], f"{prefix}{dataset}", out, stem + tag)
    if "bits_lemma21_step" in df and df["bits_lemma21_step"].notna().any() and not kappa_varies:
        written += bits_figure(df, runs, order, out, prefix + "bits per message vs k")
    lines = [
        f"Fitted rate: exp(slope) of log relative distance against k after the transient (rows at or "
        f"below {TRANSIENT:g}); theory rate: the algorithm's proven contraction of the distance (IADE c', "
        f"AIADE c, GD/AGD their exact rates; IADE-SGD: the square root of Theorem 5.2's c', which "
        f"bounds the squared distance; none for QGD and QSGD). Iterations and bits: the first "
        f"logged row at relative distance ≤ {target:g}.",
        "",
        to_markdown(rates_table(pr, order, target)),
    ]
    if kappa_varies:
        table, slopes = kappa_table(pr, order)
        written += kappa_figure(pr, runs, slopes, out, prefix + "iterations vs condition number", target)
        lines += [
            "",
            f"## Iterations to relative distance {target:g} against κ",
            "",
            "Fitted slope: least squares of log iterations on log κ (theory: IADE/GD about 1, AIADE/AGD about 0.5).",
            "",
            to_markdown(table),
        ]
    ef_files, ef_lines = hard_threshold.error_feedback_report(df, runs, order, out, prefix)
    written += ef_files
    lines += ef_lines
    if "bound0" in runs and runs["bound0"].notna().any():
        bounded = " and ".join(dict.fromkeys(runs.loc[runs["bound0"].notna(), "method"].astype(str)))
        written += sq_distance_figure(df, runs, out, f"{prefix}{bounded}, mean square distance")
    return written, lines
