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


def test_mypy_sees_the_installed_package_through_the_link_tree(tmp_path):
    """scripts/mypy_tree.py links compress_train.* to the folders pyproject's package-dir names, so mypy
    resolves the project's own imports (checked here on a copy: every mapped package is a link to its folder,
    the API's modules are the package's own)."""
    import importlib.util
    import shutil

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("mypy_tree", root / "scripts" / "mypy_tree.py")
    assert spec and spec.loader
    tree = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tree)
    shutil.copy(root / "pyproject.toml", tmp_path / "pyproject.toml")
    mapping = tree.package_dirs(tmp_path)
    for folder in set(mapping.values()):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    (tmp_path / mapping["compress_train"] / "__init__.py").write_text("")
    package = tree.make_tree(tmp_path)
    assert (package / "__init__.py").resolve() == (tmp_path / mapping["compress_train"] / "__init__.py").resolve()
    for name, folder in mapping.items():
        if name != "compress_train":
            link = package.joinpath(*name.split(".")[1:])
            assert link.is_symlink() and link.resolve() == (tmp_path / folder).resolve(), name
    import tomllib

    mypy = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["mypy"]
    assert mypy["mypy_path"] == "build/mypy" and mypy["packages"] == ["compress_train"]
