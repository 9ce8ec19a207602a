"""Every experiment preset and method bundle composes, every sweep value of every preset validates at
both scales, and the first job of each preset runs at a tiny scale; the paper-scale settings are the paper's."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from test_resume import run_in_process

from cli_helpers import run_cli
from compress_train.runner.config.check import check_config
from compress_train.runner.preflight import group_errors
from compress_train.runner.schedule import lr_at, warmup_factor

CONF = Path(__file__).resolve().parents[1] / "conf"
PRESETS = sorted(str(p.relative_to(CONF / "experiment").with_suffix("")) for p in (CONF / "experiment").rglob("*.yaml"))
METHODS = sorted(str(p.relative_to(CONF / "method").with_suffix("")) for p in (CONF / "method").rglob("*.yaml"))


# Presets whose paper scale reads a file only the user has (no registry ships gisette): a stand-in
# path, so validation runs (it checks that the file exists, not what is in it).
USER_DATA = {
    ("hard_threshold/fig1", "paper"): [f"dataset.path={__file__}"],
    ("hard_threshold/fig2_lstm", "paper"): [f"dataset.root={Path(__file__).parent}"],
}  # WikiText-2


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


def preset_scales(preset: str) -> set[str]:
    from compress_train.runner.config.presets import preset_scales as scales

    return set(scales(preset))


@pytest.mark.parametrize("scale", ["ci", "paper", "long"])
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_job_validates(make_config, preset, scale):
    """Every value of every sweep axis composes and validates (with the single-valued axes, e.g. the
    scale's dataset and model). The whole cartesian product is what the CLI's preflight checks before a
    sweep starts; here it would cost a compose per job (~1,350 over both scales). ``long`` exists where
    a claim needed a longer horizon than ci."""
    if scale == "long" and scale not in preset_scales(preset):
        pytest.skip(f"{preset} has no scale=long")
    params = sweep_params(make_config, preset, scale)
    assert "seed" in params, "seeds must be a sweep axis"
    # compose alone would skip a misspelt method (an `optional` group default): the CLI's own check
    assert not group_errors(OverridesParser.create().parse_overrides([f"{k}={','.join(v)}" for k, v in params.items()]))
    fixed = [f"{k}={v[0]}" for k, v in params.items() if len(v) == 1]  # e.g. the scale's dataset and model
    assert all(v.isdigit() for v in params["seed"])  # seeds differ in nothing a check reads: the first stands for all
    for key, values in params.items():
        for value in values[:1] if key == "seed" else values:
            cfg = make_config(
                f"experiment={preset}", f"scale={scale}", *fixed, f"{key}={value}", *USER_DATA.get((preset, scale), [])
            )
            check_config(cfg)
            assert cfg.experiment_name == preset


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_smoke_runs(tmp_path, make_config, preset):
    """The first job of the sweep (each axis at its first value), one step, in this process (a CLI
    start-up per preset was a minute and a half of CI; the CLI's sweep path runs in test_cli,
    test_preflight and test_discover). ``test_every_preset_job_validates`` composes and validates every
    value of every axis at both scales."""
    params = sweep_params(make_config, preset)
    first = {k: v[0] for k, v in params.items()}
    tiny = ("train.max_steps=1", "train.eval_every=1", "train.eval_batch_size=200", "threads=1")
    job = run_in_process(tmp_path / "job", f"experiment={preset}", *(f"{k}={v}" for k, v in first.items()), *tiny)
    assert job["status"] == "completed" and job["experiment"] == preset and job["method"]
    assert job["seed"] == int(first["seed"])


# -- the paper-scale settings are the paper's ---------------------------------------------------------


def schedule_of(cfg) -> dict:
    """The schedule as the trainer reads it (``OmegaConf.to_container`` without resolving)."""
    return OmegaConf.to_container(cfg.train.get("lr_schedule"))


@pytest.mark.parametrize(
    "preset, batch, base_batch",
    [
        ("hard_threshold/fig2_cnn", 256, 128),
        ("hard_threshold/fig2_lstm", 128, 64),
        ("hard_threshold/fig3", 256, 128),
        ("hard_threshold/table1", 256, 128),
    ],
)
def test_paper_warmup_factor_is_workers_times_batch_over_the_base_batch(make_config, preset, batch, base_batch):
    """The authors' run.py: factor = (batch / 128) * n_workers (CIFAR), (batch / 64) * n_workers (LSTM):
    x16 at their 8 workers, and it follows the workers and the batch when they change."""
    schedule = schedule_of(make_config(f"experiment={preset}", "scale=paper"))
    assert warmup_factor(schedule) == 8 * batch / base_batch == 16
    assert lr_at(1.0, 5, schedule) == pytest.approx(16) and lr_at(1.0, 2.5, schedule) == pytest.approx(8.5)
    for override, workers, per_worker in (("workers=4", 4, batch), ("train.batch_size=32", 8, 32)):
        changed = schedule_of(make_config(f"experiment={preset}", "scale=paper", override))
        assert warmup_factor(changed) == pytest.approx(workers * per_worker / base_batch)


def sweep_levels(make_config, preset: str, scale: str) -> dict[str, list[float]]:
    """Per compressor, the level each method file of the sweep sets (Top-k ratio; threshold lambda, or
    the k ratio of its 1/(2 sqrt(k)) rule)."""
    levels: dict[str, list[float]] = {}
    for method in sweep_params(make_config, preset, scale)["method"]:
        c = OmegaConf.load(CONF / "method" / f"{method}.yaml").get("compressor") or {}
        if "ratio" in c:
            levels.setdefault("topk", []).append(c.ratio)
        elif "lam" in c or "kmin_ratio" in c:
            levels.setdefault("threshold", []).append(c.kmin_ratio if c.get("lam_rule") else c.lam)
    return levels


@pytest.mark.parametrize(
    "preset, points", [("hard_threshold/fig2_cnn", [0.0006, 0.0012, 0.0075]), ("hard_threshold/fig2_lstm", [0.00025])]
)
def test_paper_density_grid_brackets_the_papers_fig2_points(make_config, preset, points):
    """Fig. 2's points (CNN 0.06%, 0.12%, 0.75%; LSTM 0.025%) lie inside the paper-scale Top-k grid,
    which is not the ci one."""
    paper, ci = sweep_levels(make_config, preset, "paper"), sweep_levels(make_config, preset, "ci")
    assert set(points) <= set(paper["topk"]) and paper["topk"] != ci["topk"]
    assert min(paper["topk"]) <= min(points) and max(points) <= max(paper["topk"])
    assert len(paper["threshold"]) >= 3
    if preset == "hard_threshold/fig2_cnn":  # the paper's measured lambdas: Fig. 3 (0.06%), Table 1 (0.13%)
        assert {0.0072, 0.00473} <= set(paper["threshold"])


@pytest.mark.parametrize(
    "preset", ["comp_ams/fig1", "comp_ams/fig3_mnist", "comp_ams/fig3_imdb", "comp_ams/fig3_cifar10"]
)
@pytest.mark.parametrize("scale", ["ci", "paper"])
def test_comp_ams_lr_grids_bracket_the_default(make_config, preset, scale):
    """Each method runs over an lr grid with 1e-3 (the default) inside it, not on its edge, and values
    above it for QAdam, whose best lr the paper found larger than COMP-AMS's."""
    grid = sorted(float(v) for v in sweep_params(make_config, preset, scale)["algo.lr"])
    assert len(grid) >= 3 and grid[0] < 1e-3 < grid[-1] and grid[-1] >= 1e-2


def test_the_def_long_scale_is_the_ci_cnn_at_width_32_on_the_full_mnist(make_config):
    cfg = make_config("experiment=def/table1", "scale=long", "dataset=mnist", "model=mnist_cnn")
    assert cfg.model.hidden == 32 and cfg.model.batch_norm is False and cfg.train.epochs == 4
    assert sweep_params(make_config, "def/table1", "long")["method_args.ratio"] == ["64", "256"]
    assert sweep_params(make_config, "def/table4", "long")["method_args.lam"] == ["0.1", "0.3", "0.8"]
    bn = make_config("experiment=def/table1", "scale=long", "dataset=mnist", "model=mnist_cnn", "model.batch_norm=true")
    assert bn.model.batch_norm is True and bn.model.hidden == 32
    ci = make_config("experiment=def/table1", "scale=ci", "dataset=mnist", "model=mnist_cnn")
    assert ci.model.hidden == 128  # the ci preset as before; docs/results pass model.hidden=32


@pytest.mark.slow
def test_scale_long_never_trains_on_the_stand_in(tmp_path):
    """The longer horizon is about the real set: without the full MNIST it stops with one line, exit 2."""
    proc = run_cli(
        "-m", "experiment=def/sgd", "scale=long", "seed=0", f"hydra.sweep.dir={tmp_path / 's'}", cwd=tmp_path
    )
    assert proc.returncode != 0
    assert "scale=long allows no stand-in" in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "preset, scale, extra",
    [("def/table3", "ci", ()), ("def/table4", "long", ("method_args.lam=0.3",)), ("def/fig3", "ci", ())],
)
@pytest.mark.parametrize("method", ["def/def", "def/def_a"])
def test_a_preset_whose_claims_take_def_table1_runs_trains_table1s_r64_job(make_config, preset, scale, extra, method):
    """conf/claims/def.yaml lets these presets' claims count def/table1's R = 64 runs at ``scale``: the
    jobs must be the same training, the preset's name and its table of scales aside."""

    def job(name: str, *more: str) -> dict:
        cfg = make_config(f"experiment={name}", f"scale={scale}", f"method={method}", "method_args.ratio=64", *more)
        tree = OmegaConf.to_container(cfg, resolve=True)
        for key in ("experiment_name", "scales"):
            tree.pop(key)
        return tree

    assert job(preset, *extra) == job("def/table1")
