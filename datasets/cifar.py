"""CIFAR-10 / CIFAR-100: a real reader of the standard python batches, plus augmentation.

``load_cifar("cifar10"|"cifar100", root)`` reads ``cifar-10-batches-py/data_batch_1..5`` +
``test_batch`` (or ``cifar-100-python/train`` + ``test``): pickled dicts with ``b'data'``
(uint8 N x 3072, channel-major) and ``b'labels'`` / ``b'fine_labels'``. ``root`` may be the
batches folder itself or its parent. Our own reader is used (torchvision's verifies md5 sums,
which small test files cannot match); torchvision serves only to download the official archive
when files are missing and ``download`` is true. Images come back float32 N x 3 x 32 x 32,
normalised with the per-channel mean/std of the training set; labels int64. ``augment`` is the
standard random 32 x 32 crop of the 4-padded image plus horizontal flip (``random_crop_flip``).

No package ships CIFAR. With no root, the cache directory is tried (and downloaded into when
allowed); failing that a ``DataFileError`` says how to provide it, unless ``synthetic`` is
true, in which case a SYNTHETIC set of the same shape is returned and one line is logged.
"""

from __future__ import annotations

import os
import pickle
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from compress_train.datasets.base import ArrayDataset, Augment
from compress_train.datasets.errors import DataFileError
from compress_train.datasets.synthetic import synthetic_images

TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Variant:
    display: str
    folder: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    label_key: str
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    torchvision_class: str


VARIANTS = {
    "cifar10": Variant(
        "CIFAR-10",
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        "labels",
        10,
        (0.4914, 0.4822, 0.4465),
        (0.2470, 0.2435, 0.2616),
        "CIFAR10",
    ),
    "cifar100": Variant(
        "CIFAR-100",
        "cifar-100-python",
        ("train",),
        ("test",),
        "fine_labels",
        100,
        (0.5071, 0.4865, 0.4409),
        (0.2673, 0.2564, 0.2762),
        "CIFAR100",
    ),
}


def default_cache_dir(variant: str) -> Path:
    """``$COMPRESS_TRAIN_DATA/<variant>`` if set, else ``~/.cache/compress_train/<variant>``."""
    base = os.environ.get("COMPRESS_TRAIN_DATA")
    return Path(base) / variant if base else Path.home() / ".cache" / "compress_train" / variant


def read_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch -> (uint8 N x 3 x 32 x 32, int64 N); DataFileError naming ``path``."""
    try:
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="bytes")
    except Exception as e:  # missing, truncated, not a pickle
        raise DataFileError(f"{path}: not a readable CIFAR python batch ({type(e).__name__}: {e})") from e
    if not isinstance(d, dict):
        raise DataFileError(f"{path}: holds a {type(d).__name__}, expected a dict with data and {label_key}")
    get = lambda k: d.get(k.encode(), d.get(k))  # noqa: E731 - real files use bytes keys
    data, labels = get("data"), get(label_key)
    if data is None or labels is None:
        raise DataFileError(f"{path}: lacks key b'data' or b'{label_key}' (has {sorted(map(str, d))})")
    data, labels = np.asarray(data), np.asarray(labels)
    if data.ndim != 2 or data.shape[1] != 3072 or data.dtype != np.uint8:
        raise DataFileError(f"{path}: data is {data.dtype} {data.shape}, expected uint8 N x 3072")
    if labels.shape != (len(data),):
        raise DataFileError(f"{path}: {len(data)} images but labels of shape {labels.shape}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _locate(directory: Path, v: Variant) -> Path | None:
    for d in (directory, directory / v.folder):
        if all((d / name).is_file() for name in v.train + v.test):
            return d
    return None


def _download(directory: Path, v: Variant) -> str | None:
    """Fetch and unpack the official archive into ``directory``; None on success, else why not."""
    old = socket.getdefaulttimeout()
    try:
        from torchvision import datasets
        from torchvision.datasets.utils import download_and_extract_archive

        cls = getattr(datasets, v.torchvision_class)
        directory.mkdir(parents=True, exist_ok=True)
        socket.setdefaulttimeout(TIMEOUT_S)
        download_and_extract_archive(cls.url, str(directory), filename=cls.filename, md5=cls.tgz_md5)
        return None
    except Exception as e:  # network, HTTP, disk or archive failure
        return f"{type(e).__name__}: {e}"
    finally:
        socket.setdefaulttimeout(old)


def random_crop_flip(
    x: torch.Tensor, generator: torch.Generator, padding: int = 4, fill: torch.Tensor | None = None
) -> torch.Tensor:
    """Per image: pad by ``padding`` (with per-channel ``fill``, default 0), crop a random H x W
    window, flip horizontally with probability 1/2. Vectorised; same generator state, same output."""
    n, c, h, w = x.shape
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=generator, device=generator.device)
    flip = torch.rand(n, generator=generator, device=generator.device) < 0.5
    offsets, flip = offsets.to(x.device), flip.to(x.device)
    padded = x.new_zeros(n, c, h + 2 * padding, w + 2 * padding)
    if fill is not None:
        padded += fill.to(x).view(1, c, 1, 1)
    padded[:, :, padding : padding + h, padding : padding + w] = x
    rows = offsets[0, :, None] + torch.arange(h, device=x.device)
    cols = offsets[1, :, None] + torch.arange(w, device=x.device)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    out = padded[torch.arange(n, device=x.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()  # advanced indices first: N x H x W x C


def make_augment(variant: str) -> Augment:
    """The standard CIFAR training augmentation on normalised batches (pads with black pixels)."""
    v = VARIANTS[variant]
    fill = -torch.tensor(v.mean) / torch.tensor(v.std)  # a 0-valued pixel after normalisation
    return lambda x, g: random_crop_flip(x, g, 4, fill)


def _normalise(images: np.ndarray, v: Variant) -> torch.Tensor:
    x = torch.from_numpy(images).float().div_(255.0)
    return (x - torch.tensor(v.mean).view(1, 3, 1, 1)) / torch.tensor(v.std).view(1, 3, 1, 1)


def _read_split(directory: Path, names: tuple[str, ...], v: Variant) -> tuple[torch.Tensor, torch.Tensor]:
    parts = [read_batch(directory / name, v.label_key) for name in names]
    for name, (_, y) in zip(names, parts):
        if y.size and (y.min() < 0 or y.max() >= v.num_classes):
            raise DataFileError(f"{directory / name}: label {int(y.max())} outside 0..{v.num_classes - 1}")
    images = np.concatenate([p[0] for p in parts])
    return _normalise(images, v), torch.from_numpy(np.concatenate([p[1] for p in parts]))


def _from_dir(directory: Path, variant: str, augment: bool) -> ArrayDataset:
    v = VARIANTS[variant]
    x_tr, y_tr = _read_split(directory, v.train, v)
    x_te, y_te = _read_split(directory, v.test, v)
    desc = (
        f"{v.display}, {len(y_tr):,} train / {len(y_te):,} test 32x32 colour images, "
        f"from the python batches in {directory}"
    )
    return ArrayDataset(
        x_tr, y_tr, x_te, y_te, variant, desc, str(directory), make_augment(variant) if augment else None
    )


def load_cifar(
    variant: str,
    root: str | Path | None,
    download: bool = True,
    synthetic: bool = False,
    augment: bool = True,
    cache_dir: Path | None = None,
    log: Callable[[str], None] = print,
) -> ArrayDataset:
    """Load ``variant`` ("cifar10" | "cifar100") as described in the module docstring."""
    v = VARIANTS[variant]
    names = ", ".join(v.train + v.test)
    if root is not None:
        directory = Path(root).expanduser()
        if not directory.is_dir():
            raise DataFileError(f"dataset.root '{directory}' does not exist")
        found, reason = _locate(directory, v), "downloading is off"
        if found is None and download:
            failure = _download(directory, v)
            found = _locate(directory, v)
            reason = f"downloading failed: {failure}" if failure else "not in the download"
        if found is None:
            raise DataFileError(
                f"dataset.root '{directory}' lacks the {v.display} python batches "
                f"({names}), looked in it and in {directory / v.folder} ({reason})"
            )
        return _from_dir(found, variant, augment)

    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir(variant)
    found = _locate(cache, v) if cache.is_dir() else None
    reason = "downloading is off"
    if found is None and download:
        failure = _download(cache, v)
        found = _locate(cache, v) if cache.is_dir() else None
        reason = f"download failed: {failure}" if failure else "not in the download"
    if found is not None:
        return _from_dir(found, variant, augment)
    if synthetic:
        data = synthetic_images(variant, v.display, v.num_classes, augment=make_augment(variant) if augment else None)
        log(
            f"{v.display}: no python batches in {cache} ({reason}); dataset.synthetic=true, so using "
            f"a SYNTHETIC stand-in of the same shape ({data.name}: {len(data.y_train):,} train / "
            f"{len(data.y_test):,} test) - a smoke test, not {v.display} results"
        )
        return data
    raise DataFileError(
        f"{v.display} is not shipped by any package and none was found in {cache} ({reason}). "
        f"Download the python version from https://www.cs.toronto.edu/~kriz/cifar.html, unpack it "
        f"and pass dataset.root=DIR (the folder holding {v.folder}/), or set dataset.synthetic=true "
        f"for a SYNTHETIC smoke-test stand-in"
    )
