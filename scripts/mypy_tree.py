"""The link tree mypy reads: ``build/mypy/compress_train/...`` -> the repository's top-level folders,
as ``pyproject.toml``'s ``[tool.setuptools.package-dir]`` maps them into one import namespace.

mypy cannot follow setuptools' package-dir mapping (the editable install hides it behind an import
hook), so without this tree every ``compress_train.*`` import is ``Any`` and a wrong argument
between modules goes unseen. ``scripts/setup.sh`` makes the tree; ``pyproject.toml`` points mypy at
it (``mypy_path``, ``packages``). The folders keep their place; only links are added, under ``build/``.

    .venv/bin/python scripts/mypy_tree.py [ROOT]     # (re)make ROOT/build/mypy (default: this repository)
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, packaged
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]


def package_dirs(root: Path) -> dict[str, str]:
    """``compress_train.x`` -> folder, from pyproject.toml."""
    config = tomllib.loads((root / "pyproject.toml").read_text())
    return dict(config["tool"]["setuptools"]["package-dir"])


def make_tree(root: Path = ROOT) -> Path:
    """Write ``root/build/mypy/compress_train`` (replacing an old one); returns the package folder."""
    base = root / "build" / "mypy"
    shutil.rmtree(base, ignore_errors=True)
    mapping = package_dirs(root)
    package = base / "compress_train"
    package.mkdir(parents=True)
    for name, folder in sorted(mapping.items()):
        if name == "compress_train":  # the package itself: its modules, one link each
            for module in sorted((root / folder).glob("*.py")):
                os.symlink(os.path.relpath(module, package), package / module.name)
            continue
        target = package.joinpath(*name.split(".")[1:])
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(root / folder, target.parent), target)
    return package


if __name__ == "__main__":
    print(make_tree(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT))
