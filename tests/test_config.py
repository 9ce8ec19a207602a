"""Every value validated before training: one message per problem, naming key, value, allowed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from compress_train.runner.config.check import ConfigError, check_config
from compress_train.runner.resume_rules import ADDED_LATER, plain_config

CONF = Path(__file__).resolve().parents[1] / "conf"
KEYS = Path(__file__).resolve().parent / "golden" / "config_keys.json"


def errors_for(make_config, *overrides):
    with pytest.raises(ConfigError) as info:
        check_config(make_config(*overrides))
    return info.value.errors


def test_defaults_are_valid(make_config):
    cfg = make_config()
    check_config(cfg)
    assert (cfg.dataset.name, cfg.model.name, cfg.algo.name, cfg.compressor.name) == (
        "mnist",
        "mnist_cnn",
        "comp_ams",
        "topk",
    )
    assert (cfg.compressor.ratio, cfg.algo.ef, cfg.workers, cfg.launcher.name) == (0.01, "classic", 1, "sim")


@pytest.mark.parametrize(
    "override, message",
    [
        ("compressor.ratio=1.5", "`compressor.ratio` must be in (0, 1], but is 1.5."),
        ("compressor.ratio=0", "`compressor.ratio` must be in (0, 1], but is 0."),
        ("compressor.scope=row", "`compressor.scope` must be one of ['model', 'layer'], but is 'row'."),
        (
            "dataset.partition=random",
            "`dataset.partition` must be one of ['iid', 'label_sorted', 'dirichlet'], but is 'random'.",
        ),
        ("workers=0", "`workers` must be an integer >= 1, but is 0."),
        ("train.batch_size=-5", "`train.batch_size` must be an integer >= 1, but is -5."),
        ("train.max_steps=0", "`train.max_steps` must be an integer >= 1 or null, but is 0."),
        (
            "algo.ef=maybe",
            "`algo.ef` must be one of ['none', 'classic', 'scaled'] or true/false for algo=comp_ams, but is 'maybe'.",
        ),
        ("algo.lr=-0.1", "`algo.lr` must be a number > 0, but is -0.1."),
        ("algo.beta2=1.0", "`algo.beta2` must be in [0, 1), but is 1.0."),
        ("device=tpu", "`device` must be one of ['auto', 'cpu', 'cuda'], but is 'tpu'."),
        ("compressor=threshold compressor.lam=-1", "`compressor.lam` must be a number >= 0, but is -1."),
        ("compressor.ratio=null", "exactly one of `compressor.ratio` and `compressor.k` must be set"),
        (
            "launcher=torchrun launcher.backend=mpi",
            "`launcher.backend` must be one of ['auto', 'gloo', 'nccl'], but is 'mpi'.",
        ),
        ("dataset.partition=dirichlet dataset.alpha=0", "`dataset.alpha` must be a number > 0, but is 0."),
    ],
)
def test_bad_value_names_key_value_and_allowed(make_config, override, message):
    errors = errors_for(make_config, *override.split())
    assert any(message in e for e in errors), errors


def test_all_problems_are_reported_at_once(make_config):
    errors = errors_for(make_config, "workers=0", "compressor.ratio=2", "algo.lr=0")
    assert len(errors) == 3


def test_uncompressed_algorithms_ignore_the_compressor(make_config):
    check_config(make_config("algo=sgd", "compressor.ratio=5"))


# Options that only validate beside a matching choice elsewhere (convex problems, aiade).
COMPANIONS = {
    ("algo", "gd"): ["problem=quadratic", "compressor=identity"],
    ("algo", "agd"): ["problem=quadratic", "compressor=identity"],
    ("algo", "qgd"): ["problem=quadratic", "compressor=bounded"],
    ("algo", "iade"): ["problem=quadratic", "compressor=bounded"],
    ("algo", "aiade"): ["problem=quadratic", "compressor=bounded"],
    ("algo", "iade_sgd"): ["problem=lsq_interp", "compressor=bounded", "compressor.mode=stochastic"],
    ("algo", "wgc_sgd"): ["problem=lsq_interp", "compressor=identity"],
    ("dataset", "quadratic"): ["model=quadratic"],
    ("dataset", "lsq_interp"): ["model=least_squares"],
    ("dataset", "libsvm"): ["model=logreg", f"dataset.path={__file__}"],
    ("model", "logreg"): ["dataset.classes=[4,9]"],
    ("model", "least_squares"): ["dataset.classes=[4,9]"],
    ("model", "quadratic"): ["dataset=quadratic"],
    ("dataset", "ptb"): ["model=lstm_lm"],
    ("dataset", "wikitext2"): ["model=lstm_lm", f"dataset.root={Path(__file__).parent}"],
    ("model", "lstm_lm"): ["dataset=ptb"],
    ("dataset", "movielens"): ["model=ncf"],
    ("model", "ncf"): ["dataset=movielens"],
    ("problem", "gisette"): [f"dataset.path={__file__}"],
    ("controller", "accordion"): ["compressor=topk", "compressor.scope=layer"],
}


@pytest.mark.parametrize(
    "group", ["algo", "compressor", "dataset", "model", "launcher", "logger", "problem", "controller"]
)
def test_every_option_composes_and_validates(make_config, group):
    """...and has no config key that older runs lack unless ``resume_rules.ADDED_LATER`` says which value
    keeps their behaviour: a resume compares configs key by key, so a new key without it refuses every
    run written before (`dataset.eval_samples`: '<absent>' -> None). ``tests/golden/config_keys.json``
    holds the keys runs have been written with; KEYS_REGEN=1 rewrites this group's entry."""
    keys: set[str] = set()
    for path in sorted((CONF / group).glob("*.yaml")):
        cfg = make_config(f"{group}={path.stem}", *COMPANIONS.get((group, path.stem), []))
        check_config(cfg)
        keys |= set(plain_config(cfg))
    recorded = json.loads(KEYS.read_text()) if KEYS.exists() else {}
    if os.environ.get("KEYS_REGEN") == "1":
        KEYS.write_text(
            json.dumps({**recorded, group: sorted(keys - set(ADDED_LATER))}, indent=1, sort_keys=True) + "\n"
        )
        recorded = json.loads(KEYS.read_text())
    new = sorted(keys - set(recorded.get(group, [])) - set(ADDED_LATER))
    assert not new, f"config keys no earlier run has: {new}; add each to resume_rules.ADDED_LATER"


@pytest.mark.parametrize(
    "overrides, chosen",
    [
        (
            ["algo=iade", "dataset=quadratic"],
            {"compressor.name": "bounded", "model.name": "quadratic", "task": "convex"},
        ),
        (["algo=iade_sgd", "dataset=lsq_interp"], {"compressor.name": "bounded", "model.name": "least_squares"}),
        (["dataset=ptb"], {"model.name": "lstm_lm", "task": "language_model"}),
        (["dataset=movielens"], {"model.name": "ncf", "task": "recommendation"}),
        (["model=logreg"], {"task": "convex", "precision": "float64"}),
    ],
)
def test_the_config_picks_what_is_forced(make_config, overrides, chosen):
    """A dataset with one valid model, an algorithm with one valid compressor: the group defaults pick it."""
    cfg = make_config(*overrides)
    assert {k: OmegaConf.select(cfg, k) for k in chosen} == chosen
    if "model=logreg" not in overrides:
        check_config(cfg)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["algo=iade", "problem=quadratic", "compressor=topk"],
            "`compressor.name` must be 'bounded' for algo=iade, but is 'topk'.",
        ),
        (
            ["algo=iade_sgd", "problem=lsq_interp", "compressor.mode=deterministic"],
            "`compressor.mode` must be 'stochastic' for algo=iade_sgd, but is 'deterministic'.",
        ),
        (["algo=aiade", "compressor=bounded"], "`model.name` must be a convex model"),
        (["model=logreg"], "`dataset.classes` must be two different digits 0-9"),
        (["model=logreg", "dataset.classes=[4,4]"], "`dataset.classes` must be two different digits 0-9"),
        (["dataset=quadratic", "model=mnist_cnn"], "`model.name` must be one of ['quadratic'] for dataset=quadratic"),
        (["problem=quadratic", "dataset.kappa=0.5"], "`dataset.kappa` must be a number >= 1.0, but is 0.5."),
        (
            ["model=logreg", "dataset=libsvm", "dataset.path=/nonexistent.svm"],
            "`dataset.path` must be an existing LIBSVM file, but '/nonexistent.svm' does not exist.",
        ),
        (["problem=mnist_4v9", "model.l2=0"], "`model.l2` must be a number > 0.0, but is 0."),
        (["problem=quadratic", "train.tol=2"], "`train.tol` must be 'auto', null or a number in (0, 1), but is 2."),
        (["precision=float64"], "`precision` must be 'float32' for model=mnist_cnn"),
        (["train.epochs=null"], "`train.epochs` and `train.max_steps` are both null"),
        (
            ["controller=accordion"],
            "it needs compressor=topk and compressor.scope=layer, but they are 'topk' and 'model'",
        ),
        (
            ["controller=accordion", "compressor.scope=layer", "controller.k_min=0.5"],
            "`controller.k_min` must be <= `controller.k_max` (0.01), but is 0.5.",
        ),
        (
            ["compressor=threshold", "compressor.lam_rule=sqrt"],
            "`compressor.lam_rule` must be null or one of ['inv_sqrt_kmin']",
        ),
        (
            ["+train.lr_schedule={warmup_epochs:-1}"],
            "`train.lr_schedule.warmup_epochs` must be a number >= 0, but is -1.",
        ),
        (
            ["problem=quadratic", "algo=iade", "compressor=bounded", "+train.lr_schedule={milestones:[1]}"],
            "`train.lr_schedule` must be null for algo=iade",
        ),
    ],
)
def test_convex_config_errors_name_the_key(make_config, overrides, message):
    with pytest.raises(ConfigError) as err:
        check_config(make_config(*overrides))
    assert message in str(err.value)
