"""compress-report on real convex sweeps (seed 003): fitted rates against the theorems' rates,
iterations and bits to the target, the kappa slope, and the files a reader opens."""
from __future__ import annotations

import math

import pytest
from cli_helpers import run_cli

from compress_train.runner.report import main
from compress_train.runner.report_convex import fitted_rate, per_run
from compress_train.runner.report_data import load_runs

pytestmark = pytest.mark.slow


def md_rows(path) -> dict[str, dict[str, str]]:
    """The first Markdown table of a report, keyed by method."""
    lines = [ln for ln in path.read_text().splitlines() if ln.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for ln in lines[2:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        if len(cells) != len(head):
            break
        rows.setdefault(dict(zip(head, cells))["method"], dict(zip(head, cells)))
    return rows


def test_fitted_rate_of_a_geometric_sequence():
    import numpy as np

    k = np.arange(0, 200, 10, dtype=float)
    assert fitted_rate(k, 0.97 ** k) == pytest.approx(0.97, rel=1e-12)
    floor = np.maximum(0.9 ** k, 1e-3)  # stalls: the fit after the transient sees the floor
    assert fitted_rate(k, floor) > 0.99


def test_rate_and_kappa_reports_on_real_sweeps(tmp_path):
    sweep = tmp_path / "kappa"
    proc = run_cli("-m", f"hydra.sweep.dir={sweep}", "problem=quadratic", "dataset.dim=8", "workers=2",
                   "method=aiade/iade,aiade/aiade,aiade/qgd", "dataset.kappa=10,100", "train.tol=1e-6",
                   "train.max_steps=3000", "train.log_every=5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "report"
    assert main([str(sweep), "--out", str(out)]) == 0
    for stem in ("iterations_vs_kappa", "distance_vs_iterations_quadratic-d8-k10", "distance_vs_bits_quadratic-d8-k100"):
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


def test_seed_002_fig1_panels_and_density_table(tmp_path):
    sweep = tmp_path / "fig1"
    proc = run_cli("-m", "experiment=hard_threshold/fig1", f"hydra.sweep.dir={sweep}", "seed=0", "train.epochs=1",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "report"
    assert main([str(sweep), "--out", str(out)]) == 0
    for stem in ("suboptimality_vs_epochs", "suboptimality_vs_bits", "error_norm_vs_epochs"):
        assert (out / f"{stem}.png").stat().st_size > 0
    text = (out / "summary.md").read_text()
    assert "## Error feedback: density, total error, suboptimality" in text
    rows: dict[str, str] = {}
    for ln in text.splitlines():  # the first table naming these methods: the error-feedback one
        if ln.startswith("| Top-k") or ln.startswith("| SGD"):
            rows.setdefault(ln.split("|")[1].strip(), ln)
    assert rows["SGD"].split("|")[3].strip() == "100" and rows["Top-k (k=2)"].split("|")[3].strip() == "0.255"
