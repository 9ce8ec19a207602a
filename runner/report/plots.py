"""Shared plotting for ``compress-report``: colours and line styles per method, the curve figure
(mean over a method's seeds aligned on the step, with a min–max band; a cross where a run
diverged) and the several-panel figure the paper modules build their figures from."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, cast

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as mticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

from compress_train.runner.report.load import aggregate  # noqa: E402
from compress_train.runner.report.tables import PERCENT  # noqa: E402

BAND_NOTE = "mean over seeds, band: min–max"
BITS_LABEL = "bits sent per worker (uplink: values + indices, signs + scales; cumulative)"
CONVEX_BITS_LABEL = "bits sent per worker (uplink, cumulative; the real code's size)"
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">"]


def put_title(fig: Any, text: str) -> None:
    """The figure's title over the whole figure (legend included), each line wrapped to the figure's width:
    a title set on a single axis spills past the figure's left edge once the legend sits beside it."""
    import textwrap

    size = plt.rcParams["font.size"] * 1.2  # figure.titlesize "large"
    width = max(40, int(fig.get_figwidth() * 72 / (0.55 * size)))
    lines = [textwrap.fill(line, width) for line in text.split("\n")]
    fig.suptitle("\n".join(lines))


def place_labels(ax: Any, points: list[tuple[float, float, str]], fontsize: float = 8) -> None:
    """A text label beside each data point (x, y in data units) that overlaps no other: a label in the
    right third of the axes goes left of its point (off the legend), and one that would overlap a label
    already placed moves down by its own height until it is clear. Overlaps are measured in display units,
    so the figure's layout is drawn and frozen first (a constrained layout would otherwise resize the axes
    after the labels were placed): call it once the axes, legend and title are final."""
    fig = ax.figure
    fig.canvas.draw()
    fig.set_layout_engine("none")
    renderer = fig.canvas.get_renderer()
    placed: list[Any] = []
    for x, y, text in sorted(points, key=lambda p: (-p[1], p[0])):
        right = ax.transAxes.inverted().transform(ax.transData.transform((x, y)))[0] > 0.67
        dx, dy = (-4, 4) if right else (4, 4)
        label = ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=fontsize,
                            ha="right" if right else "left")  # fmt: skip
        for _ in range(12):
            box = label.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in placed):
                break
            dy -= box.height * 72 / fig.dpi + 2
            label.set_position((dx, dy))
        placed.append(label.get_window_extent(renderer))


FORMATS: tuple[str, ...] = ("png", "pdf")  # every figure's files: PNG to look at, PDF for a paper
FORMAT_CHOICES = ("png", "pdf", "svg")


@contextlib.contextmanager
def figure_formats(formats: Iterable[str]) -> Iterator[None]:
    """Write every figure as ``formats`` (compress-report --formats) inside the block."""
    global FORMATS
    saved, FORMATS = FORMATS, tuple(formats)
    try:
        yield
    finally:
        FORMATS = saved


# No creation date in a PDF or SVG, and SVG ids from a fixed salt: a figure regenerated from the same runs
# is the same file, so a commit of a regenerated report shows only what changed.
UNDATED = {"pdf": {"CreationDate": None}, "svg": {"Date": None}}


def save_figure(fig: Any, out: Path, stem: str) -> list[Path]:
    """``fig`` written as ``out/<stem>.<format>`` for each of ``FORMATS``; the paths."""
    paths = [out / f"{stem}.{fmt}" for fmt in FORMATS]
    with plt.rc_context({"svg.hashsalt": "compress-train"}):
        for path in paths:
            fig.savefig(path, metadata=UNDATED.get(path.suffix[1:]))
    return paths


def _colors(name: str) -> tuple:
    """The colours of a qualitative (listed) colormap such as tab10."""
    return cast(ListedColormap, plt.get_cmap(name)).colors  # type: ignore[return-value]


RC: Any = {
    "font.size": 11,  # matplotlib rcParams (its stubs want literal keys) "axes.titlesize": 13, "axes.labelsize": 12, "legend.fontsize": 10,
    "legend.title_fontsize": 10,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "lines.linewidth": 1.8,
    "savefig.dpi": 110,
}


SYNTHETIC_TAG = "(synthetic data)"


def is_synthetic(dataset: object) -> bool:
    """A generated stand-in: the loaders name it ``<dataset>-synthetic`` (datasets/base.py), and the
    name is what summary.json records."""
    return isinstance(dataset, str) and dataset.endswith("-synthetic")


def synthetic_methods(runs: pd.DataFrame) -> set[str]:
    """The methods with at least one run on a synthetic stand-in."""
    return set(runs.loc[runs["dataset"].map(is_synthetic), "method"])


PAPERS = ("comp_ams", "sketched_ams", "hard_threshold", "aiade", "def")
PAPER_NOTE = re.compile(r"\s*\((" + "|".join(PAPERS) + r")\b[^()]*\)")


def neutral_title(title: str, runs: pd.DataFrame) -> str:
    """``title`` without a note naming a paper's figure ("(hard_threshold Fig. 3's panels)") unless some
    run comes from one of that paper's presets: a sweep of one's own is not that paper's figure."""
    papers = {str(e).split("/")[0] for e in runs.get("experiment", pd.Series(dtype=object)).dropna()}
    return PAPER_NOTE.sub(lambda m: m.group(0) if m.group(1) in papers else "", title)


def data_title(title: str, runs: pd.DataFrame) -> str:
    """``title`` (``neutral_title``) with ' (synthetic data)' when the runs' data is a synthetic
    stand-in; when only some are, it says the marked curves are."""
    title = neutral_title(title, runs)
    synthetic = runs["dataset"].map(is_synthetic)
    if not synthetic.any() or SYNTHETIC_TAG in title:
        return title
    return f"{title} {SYNTHETIC_TAG}" if synthetic.all() else f"{title} (synthetic data in the curves marked so)"


def data_labels(runs: pd.DataFrame, order: list[str]) -> dict[str, str]:
    """Legend label per method: the method, with ' (synthetic data)' when its runs are on a stand-in."""
    synthetic = synthetic_methods(runs)
    return {m: f"{m} {SYNTHETIC_TAG}" if m in synthetic else m for m in order}


def _base(label: str) -> str:
    """The label with its error-feedback tag removed: TopK-EF-0.01 and TopK-0.01 share a colour."""
    return re.sub(r"-?EF(\([^)]*\))?-?", "-", label).strip("-").replace("--", "-")


def styles(runs: pd.DataFrame, order: list[str]) -> dict[str, dict]:
    """Colour, line style and marker per method. Full gradient: black. An EF / no-EF pair of the
    same compressor shares a colour; the no-EF curve is dashed (as in ``comp_ams`` Fig. 1)."""
    info = runs.drop_duplicates("method").set_index("method")
    no_ef = {m: (not info.loc[m, "full_gradient"]) and str(info.loc[m, "ef"]) in ("none", "None") for m in order}
    full = [m for m in order if info.loc[m, "full_gradient"]]
    buckets: dict[str, list[str]] = {}
    for m in order:
        buckets.setdefault(_base(m), []).append(m)
    colour_of: dict[str, str] = {}
    palette = list(_colors("tab10")) if len(order) <= 10 else list(_colors("tab20"))
    palette = [c for i, c in enumerate(palette) if i != 7]  # tab10's grey is too close to black
    nxt = 0
    for m in order:
        if m in colour_of:
            continue
        if len(full) == 1 and m in full:
            colour_of[m] = "black"
            continue
        mates = buckets[_base(m)]
        pair = len(mates) == 2 and sorted(no_ef[x] for x in mates) == [False, True]
        for x in mates if pair else [m]:
            colour_of[x] = palette[nxt % len(palette)]
        nxt += 1
    return {
        m: {"color": colour_of[m], "linestyle": "--" if no_ef[m] else "-", "marker": MARKERS[i % len(MARKERS)]}
        for i, m in enumerate(order)
    }


SPARSE = 3  # a curve of this many points or fewer is drawn with markers, its seed spread as error bars


def spread(ax, a: pd.DataFrame, scale: float, color) -> None:
    """The seeds' min–max spread of an ``aggregate`` curve: a band along a curve, error bars (with caps)
    on a curve of ``SPARSE`` points or fewer, where a band would be invisible; nothing for one seed."""
    many = a[a["n"] > 1]
    if many.empty:
        return
    if len(a) <= SPARSE:
        mean = many["mean"] * scale
        yerr = np.vstack([mean - many["lo"] * scale, many["hi"] * scale - mean])
        ax.errorbar(many["x"], mean, yerr=yerr, fmt="none", ecolor=color, capsize=4, linewidth=1.2)
    else:
        ax.fill_between(a["x"], a["lo"] * scale, a["hi"] * scale, color=color, alpha=0.15, linewidth=0)


def _plain_log_labels(axis, values: np.ndarray) -> None:
    """Log axis ticks as plain numbers (0.3, 0.5, 1, 2) instead of 3 x 10^-1 when the range is short."""
    v = values[np.isfinite(values) & (values > 0)]
    if len(v) and np.log10(v.max() / v.min()) < 2.5:
        plain = mticker.FuncFormatter(lambda x, _: f"{x:g}")
        axis.set_major_formatter(plain)
        axis.set_minor_locator(mticker.LogLocator(subs=(2.0, 3.0, 5.0)))
        axis.set_minor_formatter(plain)


def has_values(df: pd.DataFrame, *cols: str) -> bool:
    return all(c in df and df[c].notna().any() for c in cols)


def file_stem(metric: str) -> str:
    """``metric`` as a file name part: 'hit_rate@10' -> 'hit_rate_10'."""
    return re.sub(r"[^A-Za-z0-9_]+", "_", metric)


def panel_figure(
    df: pd.DataFrame, runs: pd.DataFrame, order: list[str], panels: list[dict], title: str, out: Path, stem: str
) -> list[Path]:
    """Several curve panels side by side, one shared legend: a paper figure laid out as the paper
    does (``hard_threshold`` Fig. 1 and Fig. 3 have three). Each panel: ``x``, ``y``, ``xlabel``,
    ``ylabel`` and optional ``logx``/``logy``; every curve the mean over seeds with a min–max band.
    A percent metric (``PERCENT``) is drawn in percent, as its label says."""
    style, names = styles(runs, order), data_labels(runs, order)
    with plt.rc_context(RC):
        fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.4), layout="constrained")
        for ax, p in zip(np.atleast_1d(axes), panels):
            scale = 100.0 if p["y"] in PERCENT else 1.0
            for m in order:
                a = aggregate(df[df["method"] == m], p["x"], p["y"])
                if p.get("logx"):
                    a = a[a["x"] > 0]
                if a.empty:
                    continue
                st = style[m]
                ax.plot(
                    a["x"],
                    a["mean"] * scale,
                    color=st["color"],
                    linestyle=st["linestyle"],
                    marker=st["marker"] if len(a) <= SPARSE else None,  # one evaluation per run: a point, not nothing
                    label=names[m],
                )
                spread(ax, a, scale, st["color"])
            ax.set_xscale("log" if p.get("logx") else "linear")
            ax.set_yscale("log" if p.get("logy") else "linear")
            ax.set_xlabel(p["xlabel"])
            ax.set_ylabel(p["ylabel"])
        handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
        fig.legend(
            handles, labels, loc="outside lower center", ncol=min(len(labels), 4), frameon=False, title=BAND_NOTE
        )
        put_title(fig, data_title(title, runs))
        paths = save_figure(fig, out, stem)
        plt.close(fig)
    return paths
