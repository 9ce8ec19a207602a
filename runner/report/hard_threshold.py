"""``compress-report`` additions for ``hard_threshold`` (Rethinking gradient sparsification as
total error minimization: hard threshold vs Top-k). On networks: the test metric against AVERAGE
DENSITY (Fig. 2: one point per method, mean ± std over seeds, the no-compression line dashed),
error norm and density against iterations (Fig. 3), and Table 1 with the paper's ResNet-18 row
beside ours. On convex runs with error feedback (the ``aiade`` report calls it): Fig. 1's
suboptimality against epochs and bits and the error norm, with the density and total error table.

Average density is the run's own (1/T) sum_t k_t/d (values sent, the paper's convention), read
from ``summary.json``; nothing is assumed from the compressor's nominal ratio.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from compress_train.runner.report.comp_ams import MAX_SERIES, figure_title, method_styles, series_figure  # noqa: E402
from compress_train.runner.report.plots import (  # noqa: E402
    CONVEX_BITS_LABEL,
    RC,
    SYNTHETIC_TAG,
    data_labels,
    file_stem,
    is_synthetic,
    place_labels,
    put_title,
    save_figure,
)
from compress_train.runner.report.tables import PERCENT, metric_label, to_markdown  # noqa: E402

# ``hard_threshold`` Table 1, ResNet-18 on CIFAR-10 (accuracy % / average density %), 6 seeds.
PAPER_TABLE1 = {
    "Top-1%": (94.1, 1.00),
    "Top-0.1%": (93.2, 0.10),
    "ACCORDION": (93.5, 0.53),
    "Hard-threshold": (94.0, 0.13),
}


EF_LABELS = {  # the algorithm's ``ef`` modes in a legend's words (algorithms/ef_sgd.py)
    "classic": "EF",
    "scaled": "scaled EF",
    "powersgd": "EF on raw gradients",
    "local_momentum": "EF with local momentum",
}


def compressed_with_ef(runs: pd.DataFrame) -> bool:
    return bool(((~runs["full_gradient"]) & runs["ef"].isin(["classic", "scaled", "powersgd"])).any())


def final_values(df: pd.DataFrame, runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per run: the last logged value of ``metric`` and of the average density."""
    last = df.dropna(subset=[metric]).sort_values("step").groupby("run_dir").last() if metric in df else pd.DataFrame()
    dens = df.dropna(subset=["avg_density"]).sort_values("step").groupby("run_dir")["avg_density"].last()
    out = runs[["run_dir", "method", "compressor", "ef", "full_gradient", "status"]].copy()
    out["family"] = out["compressor"].astype(str) + out["ef"].map(
        lambda e: "" if str(e) in ("none", "None") else f" + {EF_LABELS.get(str(e), f'EF ({e})')}"
    )
    algos = runs.get("algo", pd.Series(dtype=object))
    if algos[~runs["full_gradient"]].nunique() > 1:  # one line per algorithm too: QAdam is not BkSign-EF
        out["family"] = algos.astype(str) + ": " + out["family"]
    out["metric"] = out["run_dir"].map(last[metric]) if len(last) else math.nan
    out["density"] = out["run_dir"].map(dens)
    return out


def density_figure(
    df: pd.DataFrame, runs: pd.DataFrame, order: list[str], metric: str, out: Path, title: str
) -> list[Path]:
    """Fig. 2: final metric against average density (log x); the levels of one compressor with one
    error-feedback mode are joined by a line."""
    fv = final_values(df, runs, metric)
    scale = 100.0 if metric in PERCENT else 1.0
    style, names = method_styles(runs, order), data_labels(runs, order)
    synthetic = set(runs.loc[runs["dataset"].map(is_synthetic), "run_dir"])
    families = list(fv[~fv["full_gradient"]].groupby("family", sort=False))
    refs = list(fv[fv["full_gradient"]].groupby("method", sort=False))
    room = max(1, MAX_SERIES - len(refs))
    chunks = [families[i : i + room] for i in range(0, len(families), room)] or [[]]
    with plt.rc_context(RC):
        fig, axes = plt.subplots(
            1, len(chunks), figsize=(6.0 * len(chunks) + 2.5, 5.2), layout="constrained", squeeze=False
        )
        labels_of: list[tuple[Any, list[tuple[float, float, str]]]] = []
        for ax, chunk in zip(axes[0], chunks):
            labels: list[tuple[float, float, str]] = []
            labels_of.append((ax, labels))
            for comp, fam in chunk:
                pts = (
                    fam.groupby("method", sort=False)
                    .agg(x=("density", "mean"), y=("metric", "mean"), s=("metric", "std"))
                    .sort_values("x")
                )
                first = style[pts.index[0]]  # EF and no-EF of one compressor: one colour, no-EF dashed
                ax.errorbar(
                    pts["x"] * 100,
                    pts["y"] * scale,
                    yerr=pts["s"].fillna(0) * scale,
                    marker="o",
                    capsize=3,
                    color=first["color"],
                    linestyle=first["linestyle"],
                    label=f"{comp} {SYNTHETIC_TAG}" if fam["run_dir"].isin(synthetic).any() else comp,
                )
                labels += [(r["x"] * 100, r["y"] * scale, str(m)) for m, r in pts.iterrows()]
            for m, g in refs:
                ax.axhline(g["metric"].mean() * scale, color="black", linestyle="--", label=f"{names[m]} (mean)")
            ax.set_xscale("log")
            ax.set_xlabel("average density (%) = (1/T) Σ k_t / d, values sent")
            ax.set_ylabel(f"final {metric_label(metric)}")
            ax.legend(frameon=False, title="mean ± std over seeds", loc="upper left", bbox_to_anchor=(1.01, 1.0))
        put_title(fig, figure_title(title, runs))
        for ax, labels in labels_of:  # last: place_labels freezes the layout it measures in
            place_labels(ax, labels)
        paths = save_figure(fig, out, f"{file_stem(metric)}_vs_avg_density")
        plt.close(fig)
    return paths


def iteration_panels(
    df: pd.DataFrame, runs: pd.DataFrame, order: list[str], metric: str, out: Path, prefix: str
) -> list[Path]:
    """Fig. 3: the metric, the error norm and the density against iterations, as three files and as
    one three-panel figure."""
    present = [y for y in (metric, "error_norm", "density") if y in df and df[y].notna().any()]
    labels = {metric: metric_label(metric), "error_norm": "error norm ‖e‖", "density": "density k_t / d"}
    written = series_figure(
        df[df["step"] > 0],
        runs,
        order,
        [dict(x="step", y=y, xlabel="iterations", ylabel=labels[y], logy=y == "density") for y in present],
        prefix + "against iterations (hard_threshold Fig. 3's panels)",
        out,
        "fig3_panels",
    )
    for y, ylabel, kw in (
        (metric, metric_label(metric), {}),
        ("error_norm", "error norm ‖e‖ (mean over workers)", {}),
        ("density", "density k_t / d (this step, mean over workers)", dict(logy=True)),
    ):
        if y in df and df[y].notna().any():
            written += series_figure(
                df[df["step"] > 0],
                runs,
                order,
                [dict(x="step", y=y, xlabel="iterations", ylabel=ylabel, **kw)],
                prefix + ylabel.split(" (")[0],
                out,
                f"{file_stem(y)}_vs_iterations",
            )
    return written


def table1(df: pd.DataFrame, runs: pd.DataFrame, order: list[str], metric: str) -> pd.DataFrame:
    """Accuracy and average density per method, the factor against Top-1%, the paper's numbers."""
    fv = final_values(df, runs, metric)
    scale = 100.0 if metric in PERCENT else 1.0
    agg = fv.groupby("method").agg(
        m=("metric", "mean"), s=("metric", "std"), d=("density", "mean"), n=("metric", "count")
    )
    ref = agg["d"].get("Top-1%", math.nan)
    rows = []
    for m in order:
        if m not in agg.index:
            continue
        a = agg.loc[m]
        paper = PAPER_TABLE1.get(m)
        rows.append(
            {
                "method": m,
                "seeds": int(a["n"]),
                f"ours: {metric_label(metric)}": f"{a['m'] * scale:.2f} ± {0 if math.isnan(a['s']) else a['s'] * scale:.2f}",
                "ours: average density (%)": f"{a['d'] * 100:.3f}",
                "ours: density vs Top-1%": "–" if not math.isfinite(ref) else f"{a['d'] / ref:.2f}×",
                "paper (ResNet-18, CIFAR-10): accuracy % / density %": "–"
                if paper is None
                else f"{paper[0]} / {paper[1]:.2f}",
            }
        )
    return pd.DataFrame(rows)


def density_report(
    df: pd.DataFrame, runs: pd.DataFrame, order: list[str], out: Path, metric: str, title: str | None
) -> tuple[list[Path], list[str]]:
    """Figures and Markdown for compressed runs with error feedback; ([], []) when there are none."""
    if not compressed_with_ef(runs) or "avg_density" not in df or metric not in df:
        return [], []
    prefix = f"{title}: " if title else ""
    written = iteration_panels(df, runs, order, metric, out, prefix)
    lines: list[str] = []
    # a density comparison needs one compressor at several levels (several distinct densities)
    fv = final_values(df, runs, metric).query("~full_gradient")
    families = fv.groupby(["family", "method"])["density"].mean().round(4).groupby(level=0).nunique()
    if (families >= 2).any():
        written += density_figure(df, runs, order, metric, out, prefix + f"{metric_label(metric)} vs average density")
    if set(PAPER_TABLE1) & set(runs["method"]):
        lines += [
            "## Table 1 (hard_threshold, Rethinking gradient sparsification as total error minimization): "
            "accuracy and average density",
            "",
            "Ours: mean ± sample std over seeds of the final evaluation and of the run's average density. "
            "The paper's column is its ResNet-18 / CIFAR-10 row; our runs train a different network "
            "on different data, so compare the ordering and the density factors, not the accuracies.",
            "",
            to_markdown(table1(df, runs, order, metric)),
            "",
        ]
    if not (families >= 2).any():  # one level per compressor: nothing to set against density
        return written, lines
    fv = final_values(df, runs, metric)
    summary = fv.groupby("method", sort=False).agg(metric=("metric", "mean"), density=("density", "mean"))
    lines += [
        "## Average density per method",
        "",
        to_markdown(
            pd.DataFrame(
                {
                    "method": summary.index,
                    f"final {metric_label(metric)} (mean)": [
                        f"{v * (100 if metric in PERCENT else 1):.2f}" for v in summary["metric"]
                    ],
                    "average density (%)": [f"{v * 100:.4g}" for v in summary["density"]],
                }
            )
        ),
        "",
    ]
    return written, lines


def error_feedback_table(df: pd.DataFrame, runs: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """``hard_threshold``'s quantities per method (mean ± std over seeds): average density, total error,
    final and mean suboptimality, bits; density also as a factor against the densest method."""
    rows = []
    for m in order:
        mr = runs[runs["method"] == m]
        per = [df[df["run_dir"] == r].sort_values("step") for r in mr["run_dir"]]

        def ms(values, fmt="{:.3g}"):
            v = np.array([x for x in values if math.isfinite(x)])
            return (
                "–" if not len(v) else fmt.format(v.mean()) + (f" ± {fmt.format(v.std(ddof=1))}" if len(v) > 1 else "")
            )

        rows.append(
            {
                "method": m,
                "seeds": len(mr),
                "average density (%)": ms([100 * d["avg_density"].iloc[-1] for d in per]),
                "total error Σ‖e‖²": ms([d["total_error"].iloc[-1] for d in per]),
                "final suboptimality": ms([d["suboptimality"].iloc[-1] for d in per]),
                "mean suboptimality over training": ms([d["suboptimality"].iloc[1:].mean() for d in per]),
                "bits up / worker": ms([d["bits_up"].iloc[-1] for d in per]),
            }
        )
    return pd.DataFrame(rows)


def error_feedback_figures(
    df: pd.DataFrame, runs: pd.DataFrame, order: list[str], out: Path, prefix: str
) -> list[Path]:
    """``hard_threshold`` Fig. 1's three panels: suboptimality vs epochs and vs bits, error norm vs epochs."""
    written = series_figure(
        df[df["step"] > 0],
        runs,
        order,
        [
            dict(x="epoch", y="suboptimality", xlabel="epochs", ylabel="suboptimality f(x) − f*", logy=True),
            dict(
                x="bits_up",
                y="suboptimality",
                xlabel="bits sent per worker",
                ylabel="suboptimality f(x) − f*",
                logx=True,
                logy=True,
            ),
            dict(x="epoch", y="error_norm", xlabel="epochs", ylabel="error norm ‖e‖"),
        ],
        prefix + "suboptimality vs epochs and bits, error norm (hard_threshold Fig. 1's panels)",
        out,
        "fig1_panels",
    )
    for x, y, stem, xlabel, ylabel, kw in (
        ("epoch", "suboptimality", "suboptimality_vs_epochs", "epochs", "suboptimality f(x) − f*", dict(logy=True)),
        (
            "bits_up",
            "suboptimality",
            "suboptimality_vs_bits",
            CONVEX_BITS_LABEL,
            "suboptimality f(x) − f*",
            dict(logx=True, logy=True),
        ),
        ("epoch", "error_norm", "error_norm_vs_epochs", "epochs", "error norm ‖e‖ (mean over workers)", {}),
    ):
        written += series_figure(
            df[df["step"] > 0] if x == "bits_up" else df,
            runs,
            order,
            [dict(x=x, y=y, xlabel=xlabel, ylabel=ylabel, **kw)],
            prefix + ylabel.split(" (")[0],
            out,
            stem,
        )
    return written


def error_feedback_report(
    df: pd.DataFrame, runs: pd.DataFrame, order: list[str], out: Path, prefix: str
) -> tuple[list[Path], list[str]]:
    """Fig. 1 and the density table for convex runs with error feedback: (files written, Markdown
    lines); ([], []) when no run has an error norm."""
    if not ("error_norm" in df and (df["error_norm"].fillna(0) > 0).any()):
        return [], []
    written = error_feedback_figures(df, runs, order, out, prefix)
    lines = [
        "",
        "## Error feedback: density, total error, suboptimality",
        "",
        "Average density: (1/T) Σ_t k_t/d, values sent over dimension, mean over workers (hard_threshold's "
        "x-axis). Total error: Σ_t of the mean over workers of ‖e_t‖². Mean ± sample std over seeds.",
        "",
        to_markdown(error_feedback_table(df, runs, order)),
    ]
    return written, lines
