"""compress-report on real convex sweeps (``aiade``): fitted rates against the theorems' rates,
iterations and bits to the target, the kappa slope, and the files a reader opens."""

from __future__ import annotations

import math

import pytest
from test_report_readability import record_figures, series_per_axis, titles

from cli_helpers import run_cli
from compress_train.runner.report.aiade import fitted_rate, per_run
from compress_train.runner.report.cli import main
from compress_train.runner.report.comp_ams import MAX_SERIES
from compress_train.runner.report.load import load_runs

pytestmark = pytest.mark.slow


def test_fitted_rate_of_a_geometric_sequence():
    import numpy as np

    k = np.arange(0, 200, 10, dtype=float)
    assert fitted_rate(k, 0.97**k) == pytest.approx(0.97, rel=1e-12)
    floor = np.maximum(0.9**k, 1e-3)  # stalls: the fit after the transient sees the floor
    assert fitted_rate(k, floor) > 0.99


def test_rate_and_kappa_reports_on_real_sweeps(tmp_path, monkeypatch):
    saved = record_figures(monkeypatch)
    sweep = tmp_path / "kappa"
    proc = run_cli(
        "-m",
        f"hydra.sweep.dir={sweep}",
        "problem=quadratic",
        "dataset.dim=8",
        "workers=2",
        "method=aiade/iade,aiade/aiade,aiade/qgd",
        "dataset.kappa=10,100",
        "train.tol=1e-6",
        "train.max_steps=3000",
        "train.log_every=5",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "report"
    assert main([str(sweep), "--out", str(out)]) == 0
    for stem in (
        "iterations_vs_kappa",
        "distance_vs_iterations_quadratic-d8-k10",
        "distance_vs_bits_quadratic-d8-k100",
    ):
        assert (out / f"{stem}.png").stat().st_size > 0 and (out / f"{stem}.pdf").exists()
    df, runs = load_runs([sweep])
    pr = per_run(df, runs, 1e-6)
    iade = pr[pr["algo"] == "iade"]
    assert (abs(iade["fitted_rate"] - iade["theory_rate"]) < 0.3 * (1 - iade["theory_rate"])).all()
    assert pr[pr["algo"] == "qgd"]["iters"].isna().all()  # the floor: never reaches 1e-6
    text = (out / "summary.md").read_text()
    assert "fitted slope" in text and "not reached" in text
    kappa_rows = [ln for ln in text.splitlines() if ln.startswith("| IADE |") or ln.startswith("| AIADE |")]
    slopes = {ln.split("|")[1].strip(): float(ln.split("|")[-3]) for ln in kappa_rows}
    assert 0.7 < slopes["IADE"] < 1.3 and slopes["AIADE"] < slopes["IADE"]
    assert math.isfinite(slopes["AIADE"])
    for fig in saved:  # no paper preset: no paper key; a generated problem: no stand-in
        assert max(series_per_axis(fig)) <= MAX_SERIES and "standing in" not in titles(fig), titles(fig)
