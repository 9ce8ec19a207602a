"""Packaging guards (docs/architecture.md): one namespace, nothing shadowed, configs shipped, layering kept."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_datasets_folder_is_not_a_regular_package():
    # With an __init__.py, a top-level datasets/ would shadow HuggingFace `datasets`.
    assert not (ROOT / "datasets" / "__init__.py").exists()
    assert not (ROOT / "tests" / "__init__.py").exists()


def test_every_code_and_config_folder_is_packaged():
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapped = set(tool["package-dir"].values())
    for folder in ("runner", "algorithms", "compressors", "datasets", "models", "conf"):
        assert folder in mapped
    assert "**/*.yaml" in tool["package-data"]["compress_train.conf"]


def test_only_the_launch_layer_imports_torch_distributed():
    allowed = {"runner/dist.py", "runner/worker.py"}
    pattern = re.compile(r"^\s*(import torch\.distributed|from torch\.distributed|from torch import distributed)", re.M)
    offenders = [
        str(p.relative_to(ROOT))
        for folder in ("runner", "algorithms", "compressors", "datasets", "models")
        for p in (ROOT / folder).rglob("*.py")
        if pattern.search(p.read_text())
    ]
    assert sorted(set(offenders) - allowed) == []


def test_algorithms_and_compressors_never_read_configs():
    for folder in ("algorithms", "compressors"):
        for p in (ROOT / folder).rglob("*.py"):
            text = p.read_text()
            assert "omegaconf" not in text and "hydra" not in text, p
