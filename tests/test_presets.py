"""Every experiment preset and method bundle composes, validates, and runs at a tiny scale."""
from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import run_cli, summary

from compress_train.runner.config.check import check_config

CONF = Path(__file__).resolve().parents[1] / "conf"
PRESETS = sorted(str(p.relative_to(CONF / "experiment").with_suffix("")) for p in (CONF / "experiment").rglob("*.yaml"))
METHODS = sorted(str(p.relative_to(CONF / "method").with_suffix("")) for p in (CONF / "method").rglob("*.yaml"))


# Presets whose paper scale reads a file only the user has (no registry ships gisette): a stand-in
# path, so validation runs (it checks that the file exists, not what is in it).
USER_DATA = {("hard_threshold/fig1", "paper"): [f"dataset.path={__file__}"]}


def sweep_params(make_config, preset: str, scale: str = "ci") -> dict[str, list[str]]:
    """The sweep axes as the preset gives them at ``scale`` (axes may depend on the scale)."""
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="compress_train.conf", version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={preset}", f"scale={scale}"], return_hydra_config=True)
    return {k: str(v).split(",") for k, v in cfg.hydra.sweeper.params.items()}


def bundle_companions(method: str) -> list[str]:
    """aiade's methods need a convex problem (IADE-SGD the interpolating one)."""
    if method == "aiade/iade_sgd":
        return ["problem=lsq_interp"]
    return ["problem=quadratic"] if method.startswith("aiade/") else []


@pytest.mark.parametrize("method", METHODS)
def test_method_bundles_validate_and_name_themselves(make_config, method):
    cfg = make_config(f"method={method}", *bundle_companions(method))
    check_config(cfg)
    assert cfg.label


@pytest.mark.parametrize("scale", ["ci", "paper"])
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_job_validates(make_config, preset, scale):
    params = sweep_params(make_config, preset, scale)
    assert "seed" in params, "seeds must be a sweep axis"
    fixed = [f"{k}={v[0]}" for k, v in params.items() if len(v) == 1]  # e.g. the scale's dataset and model
    for key, values in params.items():
        for value in values:
            cfg = make_config(f"experiment={preset}", f"scale={scale}", *fixed, f"{key}={value}",
                              *USER_DATA.get((preset, scale), []))
            check_config(cfg)
            assert cfg.experiment_name == preset


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_smoke_runs(tmp_path, make_config, preset):
    """One seed, one step per job: the whole sweep path, every method of the preset."""
    sweep = tmp_path / "sweep"
    proc = run_cli(f"experiment={preset}", f"hydra.sweep.dir={sweep}", "seed=0", "train.max_steps=1",
                   "train.eval_every=1", "train.eval_batch_size=200", cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    jobs = [summary(p.parent) for p in sweep.rglob("summary.json")]
    params = sweep_params(make_config, preset)
    expected = 1
    for key, values in params.items():
        expected *= 1 if key == "seed" else len(values)
    assert len(jobs) == expected
    assert all(j["status"] == "completed" and j["experiment"] == preset and j["method"] for j in jobs)
