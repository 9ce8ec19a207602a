"""Presets that produce a paper's item as printed, and the ``scale=long`` horizons of the claims ci does
not reproduce: every job of every such scale composes and validates, the first job of each network and
dataset pairing they bring in runs one step on stand-in data (synthetic CIFAR, a tiny ImageNet folder),
and the settings are the paper's where it gives them (grids, baselines, per-column learning rates) and
the documented horizon at ``long``."""

from __future__ import annotations

import math

import pytest
from test_imagenet_folder import write_folder
from test_presets import sweep_params
from test_resume import run_in_process

from compress_train.runner.config.check import check_config

# (preset, scale): the scales these presets add beside ci / paper / long (test_presets covers those three)
EXTRA_SCALES = [
    ("sketched_ams/fig1", "paper_cifar100"),
    ("hard_threshold/table1", "paper_googlenet"),
    ("hard_threshold/table1", "paper_senet18"),
    ("hard_threshold/table1", "paper_cifar100"),
    ("def/table3", "paper_vgg16_c100"),
    ("def/table3", "paper_resnet110_c10"),
    ("def/table3", "paper_resnet110_c100"),
    ("def/table3", "paper_wrn_c10"),
    ("def/table3", "paper_wrn_c100"),
    ("def/fig3", "paper_imagenet"),
]
CIFAR = ("cifar10", "cifar100")


@pytest.mark.parametrize("preset, scale", EXTRA_SCALES)
def test_every_job_of_the_added_scales_validates(make_config, preset, scale):
    params = sweep_params(make_config, preset, scale)
    assert "seed" in params
    fixed = [f"{k}={v[0]}" for k, v in params.items() if len(v) == 1]
    for key, values in params.items():
        for value in values:
            cfg = make_config(f"experiment={preset}", f"scale={scale}", *fixed, f"{key}={value}")
            check_config(cfg)
            assert cfg.experiment_name == preset


def job(make_config, preset: str, scale: str, **axes: str):
    """The composed job at ``scale`` with each sweep axis at its first value unless given."""
    params = sweep_params(make_config, preset, scale)
    chosen = {k: v[0] for k, v in params.items()} | axes
    return make_config(f"experiment={preset}", f"scale={scale}", *(f"{k}={v}" for k, v in chosen.items()))


# -- sketched_ams Fig. 1 ------------------------------------------------------------------------------

PAPER_LRS = [0.05, 0.01, 0.005, 0.001, 0.0005, 0.0001]
PAPER_EPS = [1e-2, 1e-4, 1e-6]
SKETCHED = "sketched_ams/fig1"
SIGN_BASELINES = {"sketched_ams/efficient_adam_sign": "efficient_adam", "sketched_ams/onebit_adam_sign": "onebit_adam"}


@pytest.mark.parametrize("scale, dataset", [("paper", "cifar10"), ("paper_cifar100", "cifar100")])
def test_sketched_ams_paper_sweeps_the_lr_eps_grid_with_the_scaled_sign_baselines(make_config, scale, dataset):
    params = sweep_params(make_config, SKETCHED, scale)
    assert params["dataset"] == [dataset] and params["model"] == ["resnet50"]
    assert [float(v) for v in params["method_args.lr"]] == PAPER_LRS
    assert [float(v) for v in params["method_args.eps"]] == PAPER_EPS
    assert set(SIGN_BASELINES) <= set(params["method"]) and len(params["method"]) == 8
    assert params["seed"] == ["0", "1", "2"]
    for method in ("sketched_ams/amsgrad", "sketched_ams/efficient_adam", *SIGN_BASELINES, "sketched_ams/pa"):
        cfg = job(make_config, SKETCHED, scale, method=method, **{"method_args.lr": "0.005", "method_args.eps": "0.01"})
        assert cfg.algo.lr == 0.005 and cfg.algo.eps == 0.01, method  # every Adam-type method on the grid
    ssgd = job(make_config, SKETCHED, scale, method="sketched_ams/sketched_sgd", **{"method_args.lr": "0.0005"})
    assert ssgd.algo.lr == 0.0005


def test_the_scaled_sign_baselines_are_eq3_over_the_model_as_the_paper_runs_them(make_config):
    for method, algo in SIGN_BASELINES.items():
        cfg = job(make_config, SKETCHED, "paper", method=method)
        assert cfg.algo.name == algo and cfg.compressor.name == "scaled_sign" and cfg.compressor.scope == "model"
        assert cfg.label.endswith("(scaled sign)")
    onebit = job(make_config, SKETCHED, "paper", method="sketched_ams/onebit_adam_sign")
    assert onebit.algo.freeze_step == 1274  # 13 of 200 epochs of 98 steps, as the Top-k variant


def test_sketched_ams_ci_keeps_its_methods_and_numbers(make_config):
    params = sweep_params(make_config, SKETCHED, "ci")
    assert not set(SIGN_BASELINES) & set(params["method"]) and len(params["method"]) == 6
    assert params["method_args.lr"] == ["0.001"] and params["method_args.eps"] == ["0.0001"]
    expect = {"sketched_ams/amsgrad": 1e-8, "sketched_ams/efficient_adam": 1e-8, "sketched_ams/pa": 1e-4}
    for method, eps in expect.items():
        cfg = job(make_config, SKETCHED, "ci", method=method)
        assert cfg.algo.lr == 0.001 and cfg.algo.eps == eps
    assert job(make_config, SKETCHED, "ci", method="sketched_ams/sketched_sgd").algo.lr == 0.01


def test_sketched_ams_long_runs_every_method_for_16_epochs_of_the_subset(make_config):
    params = sweep_params(make_config, SKETCHED, "long")
    assert len(params["method"]) == 8 and set(SIGN_BASELINES) <= set(params["method"])
    assert params["seed"] == ["0", "1", "2"]
    cfg = job(make_config, SKETCHED, "long", method="sketched_ams/onebit_adam_sign")
    steps_per_subset_epoch = 4000 // (cfg.workers * cfg.train.batch_size)
    assert cfg.train.max_steps >= 16 * steps_per_subset_epoch and cfg.model.hidden == 32
    assert cfg.algo.freeze_step == round(13 / 200 * cfg.train.max_steps)  # the paper's warm-up share
    assert cfg.compressor.name == "scaled_sign"


# -- comp_ams -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2, 4, 8])
def test_comp_ams_fig2_long_is_the_papers_lr_rule_over_1000_iterations(make_config, workers):
    params = sweep_params(make_config, "comp_ams/fig2", "long")
    assert params["workers"] == ["1", "2", "4", "8"] and params["seed"] == ["0", "1", "2"]
    cfg = job(make_config, "comp_ams/fig2", "long", workers=str(workers))
    assert math.isclose(cfg.algo.lr, 1e-4 * math.sqrt(workers)) and cfg.train.max_steps == 1000
    assert cfg.train.batch_size == 100 and cfg.label == "TopK-EF-0.01" and cfg.dataset.name == "mnist"
    assert sweep_params(make_config, "comp_ams/fig2", "ci")["seed"] == ["0", "1", "2"]


def test_comp_ams_fig1_long_is_the_block_sign_pair(make_config):
    params = sweep_params(make_config, "comp_ams/fig1", "long")
    assert params["method"] == ["comp_ams/bksign_ef", "comp_ams/bksign"] and len(params["seed"]) == 3
    assert len(sweep_params(make_config, "comp_ams/fig1", "ci")["method"]) == 8
    cfg = job(make_config, "comp_ams/fig1", "long")
    assert cfg.train.epochs == 12 and cfg.compressor.name == "blocksign"


# -- hard_threshold Fig. 2 ------------------------------------------------------------------------------


def test_hard_threshold_lstm_long_pairs_each_topk_level_with_a_threshold_over_full_epochs(make_config):
    params = sweep_params(make_config, "hard_threshold/fig2_lstm", "long")
    names = [m.split("/")[1] for m in params["method"]]
    topk = sorted(make_config(f"method=hard_threshold/{m}").compressor.ratio for m in names if "topk" in m)
    lams = [make_config(f"method=hard_threshold/{m}").compressor.lam for m in names if "threshold" in m]
    assert topk == [0.00025, 0.001, 0.01] and len(lams) == 3 and len(params["seed"]) == 3
    cfg = job(make_config, "hard_threshold/fig2_lstm", "long")
    assert cfg.train.epochs >= 1 and cfg.train.max_steps is None and cfg.dataset.eval_tokens is None


def test_hard_threshold_ncf_long_has_a_larger_batch(make_config):
    ci, long = (job(make_config, "hard_threshold/fig2_ncf", s) for s in ("ci", "long"))
    assert long.train.batch_size > ci.train.batch_size and long.workers == ci.workers


# -- the paper's other rows and columns ------------------------------------------------------------------


def test_hard_threshold_table1_rows_are_the_resnet18_settings_on_other_models(make_config):
    paper = job(make_config, "hard_threshold/table1", "paper")
    for scale, model in (("paper_googlenet", "googlenet_cifar"), ("paper_senet18", "senet18_cifar")):
        cfg = job(make_config, "hard_threshold/table1", scale)
        assert cfg.model.name == model and cfg.dataset.name == "cifar10"
        assert (cfg.algo.lr, cfg.train.epochs, cfg.workers) == (paper.algo.lr, paper.train.epochs, paper.workers)
    params = sweep_params(make_config, "hard_threshold/table1", "paper_cifar100")
    assert params["dataset"] == ["cifar100"] and "googlenet_cifar" in params["model"]
    names = [m.split("/")[1] for m in params["method"]]
    assert any("accordion" in m for m in names) and any("threshold" in m for m in names)


TABLE3 = {  # scale -> (dataset, model, lr, EF's lr)
    "paper_vgg16_c100": ("cifar100", "vgg16_bn_cifar", 0.05, 0.01),
    "paper_resnet110_c10": ("cifar10", "preact_resnet110_cifar", 0.1, 0.01),
    "paper_resnet110_c100": ("cifar100", "preact_resnet110_cifar", 0.1, 0.01),
    "paper_wrn_c10": ("cifar10", "wrn28_10_cifar", 0.1, 0.01),
    "paper_wrn_c100": ("cifar100", "wrn28_10_cifar", 0.1, 0.01),
}


@pytest.mark.parametrize("scale", sorted(TABLE3))
def test_def_table3_columns_run_every_row_with_their_own_lr(make_config, scale):
    dataset, model, lr, lr_ef = TABLE3[scale]
    params = sweep_params(make_config, "def/table3", scale)
    assert params["method"][0] == "def/sgd" and len(params["method"]) == 6 and params["method_args.ratio"] == ["64"]
    for method, want in (("def/def_a", lr), ("def/sgd", lr), ("def/ef", lr_ef)):
        cfg = job(make_config, "def/table3", scale, method=method)
        assert (cfg.dataset.name, cfg.model.name, cfg.algo.lr) == (dataset, model, want), method
    assert sweep_params(make_config, "def/table3", "paper")["method"][0] == "def/ef"  # the VGG-16 column as before


def test_def_fig3_imagenet_panel_is_table2s_setting(make_config):
    cfg = job(make_config, "def/fig3", "paper_imagenet", method="def/def_a")
    assert (cfg.dataset.name, cfg.model.name, cfg.workers * cfg.train.batch_size) == ("imagenet", "resnet50", 256)
    assert cfg.algo.lr == 0.1 and cfg.train.epochs == 100 and cfg.compressor.ratio == 64
    assert sweep_params(make_config, "def/fig3", "paper_imagenet")["method"] == ["def/def", "def/def_a"]


def test_aiade_level_and_workers_sweep_their_axis(make_config):
    for scale in ("ci", "paper"):
        levels = [float(v) for v in sweep_params(make_config, "aiade/level", scale)["method_args.level"]]
        assert len(levels) >= 4 and levels == sorted(levels) and levels[-1] / levels[0] >= 1e4
        cfg = job(make_config, "aiade/level", scale)
        assert cfg.algo.s == levels[0]
    assert sweep_params(make_config, "aiade/workers")["workers"] == ["2", "4", "8", "16"]


# -- one step of each on stand-in data -------------------------------------------------------------------

TINY = ("workers=2", "train.batch_size=2", "train.max_steps=1", "train.eval_every=1", "train.eval_batch_size=200")
# One end-to-end step per network and dataset pairing the added scales bring in: a scale left out differs
# from a kept one only in its network or in the class count (each such network runs forward and backward
# at 10 and 100 classes in test_models / test_paper_models, and every job of it validates above; GoogLeNet's
# one step alone took 46 s of CI).
SMOKE_SAME_AS = {
    ("hard_threshold/table1", "paper_googlenet"): ("hard_threshold/table1", "paper_senet18"),
    ("def/table3", "paper_resnet110_c10"): ("def/table3", "paper_resnet110_c100"),
    ("def/table3", "paper_wrn_c10"): ("def/table3", "paper_wrn_c100"),
    ("sketched_ams/fig1", "paper"): ("sketched_ams/fig1", "paper_cifar100"),
}
SMOKE = [
    *(s for s in EXTRA_SCALES if s not in SMOKE_SAME_AS),
    ("aiade/level", "ci"),
    ("aiade/workers", "ci"),
]


def test_a_scale_without_its_own_step_has_one_like_it(make_config):
    """What a left-out scale changes against the kept one: the network or the dataset, nothing else."""
    for left_out, kept in SMOKE_SAME_AS.items():
        assert kept in SMOKE and left_out[0] == kept[0]
        a, b = job(make_config, *left_out), job(make_config, *kept)
        differ = {k for k in ("dataset", "model", "algo", "compressor", "train", "workers") if a[k] != b[k]}
        assert differ and differ <= {"dataset", "model"}, (left_out, differ)


@pytest.mark.slow
@pytest.mark.parametrize("preset, scale", SMOKE)
def test_each_added_item_runs_one_step_on_stand_in_data(tmp_path, make_config, preset, scale):
    params = sweep_params(make_config, preset, scale)
    first = {k: v[0] for k, v in params.items()}
    stand_in: list[str] = []
    if first.get("dataset") in CIFAR:
        stand_in = ["dataset.synthetic=true", "dataset.download=false"]
    elif first.get("dataset") == "imagenet":
        root = write_folder(tmp_path / "imagenet")
        stand_in = [f"dataset.root={root}"]
    tiny = TINY
    if (
        first.get("model") == "wrn28_10_cifar"
    ):  # the same network code at WRN-10-1: WRN-28-10's evaluation alone took a minute
        tiny = (*TINY, "model.depth=10", "model.widen=1")
    if preset.startswith("aiade/"):  # one job at the preset's own size
        tiny = ("train.max_steps=1",)
    # in this process (the CLI's sweep path runs in test_cli, test_preflight and test_discover)
    settings = (*(f"{k}={v}" for k, v in first.items()), *stand_in, *tiny)
    run = run_in_process(tmp_path / "job", f"experiment={preset}", f"scale={scale}", "threads=1", *settings)
    assert run["status"] in ("completed", "converged") and run["experiment"] == preset
