"""Shared fixtures: composing the packaged Hydra config without running the CLI."""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_module


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
