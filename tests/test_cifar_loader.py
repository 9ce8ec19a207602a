"""CIFAR loader: tiny batches in the real pickled layout, error messages, augmentation, synthetic."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from compress_train.datasets import cifar
from compress_train.datasets.cifar import VARIANTS, load_cifar, random_crop_flip, read_batch
from compress_train.datasets.errors import DataFileError


def _batch(path: Path, n: int, label_key: str, num_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = rng.integers(0, num_classes, n).tolist()
    d = {
        b"batch_label": b"test",
        b"data": data,
        label_key.encode(): labels,
        b"filenames": [b"img%d.png" % i for i in range(n)],
    }
    if label_key == "fine_labels":
        d[b"coarse_labels"] = [y // 5 for y in labels]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(d, f, protocol=2)
    return data.reshape(-1, 3, 32, 32), np.asarray(labels)


def _write(directory: Path, variant: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    v = VARIANTS[variant]
    out = {}
    for i, name in enumerate(v.train + v.test):
        out[name] = _batch(directory / name, 3 + i % 2, v.label_key, v.num_classes, seed=i)
    return out


def _raw(x: torch.Tensor, variant: str) -> np.ndarray:
    v = VARIANTS[variant]
    x = x * torch.tensor(v.std).view(1, 3, 1, 1) + torch.tensor(v.mean).view(1, 3, 1, 1)
    return (x * 255).round().to(torch.uint8).numpy()


@pytest.mark.parametrize("variant", ["cifar10", "cifar100"])
@pytest.mark.parametrize("layout", ["parent", "batches_folder"])
def test_reads_python_batches_exactly(tmp_path: Path, variant: str, layout: str) -> None:
    folder = tmp_path / VARIANTS[variant].folder
    written = _write(folder, variant)
    ds = load_cifar(variant, tmp_path if layout == "parent" else folder, download=False, log=pytest.fail)
    v = VARIANTS[variant]
    x_tr = np.concatenate([written[n][0] for n in v.train])
    y_tr = np.concatenate([written[n][1] for n in v.train])
    x_te, y_te = written[v.test[0]]
    assert ds.name == variant and ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert ds.x_train.shape == (len(y_tr), 3, 32, 32) and ds.augment is not None
    np.testing.assert_array_equal(_raw(ds.x_train, variant), x_tr)
    np.testing.assert_array_equal(_raw(ds.x_test, variant), x_te)
    np.testing.assert_array_equal(ds.y_train.numpy(), y_tr)
    np.testing.assert_array_equal(ds.y_test.numpy(), y_te)


def test_raw_reader_keeps_channel_major_layout(tmp_path: Path) -> None:
    images, labels = _batch(tmp_path / "b", 2, "labels", 10, seed=7)
    x, y = read_batch(tmp_path / "b", "labels")
    assert x.dtype == np.uint8 and x.shape == (2, 3, 32, 32)
    np.testing.assert_array_equal(x[1, 2].reshape(-1), images[1].reshape(-1)[2048:])  # blue plane
    np.testing.assert_array_equal(y, labels)


def test_missing_batch_is_named(tmp_path: Path) -> None:
    _write(tmp_path / "cifar-10-batches-py", "cifar10")
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataFileError, match="data_batch_1, data_batch_2, data_batch_3.*downloading is off"):
        load_cifar("cifar10", tmp_path, download=False)


def test_failed_download_is_reported(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(cifar, "_download", lambda directory, v: "URLError: offline")
    with pytest.raises(DataFileError, match="downloading failed: URLError: offline"):
        load_cifar("cifar100", tmp_path, download=True)


@pytest.mark.parametrize("content", [b"", b"not a pickle", pickle.dumps([1, 2]), pickle.dumps({b"data": 1})])
def test_corrupt_batch_names_the_file(tmp_path: Path, content: bytes) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    _write(folder, "cifar10")
    (folder / "test_batch").write_bytes(content)
    with pytest.raises(DataFileError, match=re.escape(str(folder / "test_batch"))):
        load_cifar("cifar10", tmp_path, download=False)


def test_label_out_of_range_names_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    _write(folder, "cifar10")
    _batch(folder / "data_batch_2", 3, "labels", 50, seed=99)
    with pytest.raises(DataFileError, match="data_batch_2: label .* outside 0..9"):
        load_cifar("cifar10", tmp_path, download=False)


def test_missing_root_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="nowhere' does not exist"):
        load_cifar("cifar10", tmp_path / "nowhere", download=False)


def test_no_data_says_how_to_provide_it(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="not shipped by any package.*dataset.root=DIR"):
        load_cifar("cifar10", None, download=False, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("variant,classes", [("cifar10", 10), ("cifar100", 100)])
def test_synthetic_only_when_asked_and_named_so(tmp_path: Path, variant: str, classes: int) -> None:
    lines: list[str] = []
    ds = load_cifar(variant, None, download=False, synthetic=True, cache_dir=tmp_path, log=lines.append)
    assert ds.name == f"{variant}-synthetic"
    assert ds.description.startswith(f"SYNTHETIC stand-in (not {VARIANTS[variant].display})")
    assert len(lines) == 1 and "SYNTHETIC" in lines[0]
    assert ds.x_train.shape == (2000, 3, 32, 32) and ds.x_test.shape == (500, 3, 32, 32)
    assert ds.num_classes == classes


def test_cache_is_preferred_to_synthetic(tmp_path: Path) -> None:
    _write(tmp_path / "cifar-10-batches-py", "cifar10")
    ds = load_cifar("cifar10", None, download=False, synthetic=True, cache_dir=tmp_path, log=pytest.fail)
    assert ds.name == "cifar10"


def _reference(x: torch.Tensor, gen: torch.Generator, padding: int, fill: torch.Tensor) -> torch.Tensor:
    n, c, h, w = x.shape
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    out = []
    for i in range(n):
        p = fill.view(c, 1, 1).expand(c, h + 2 * padding, w + 2 * padding).clone()
        p[:, padding : padding + h, padding : padding + w] = x[i]
        crop = p[:, offsets[0, i] : offsets[0, i] + h, offsets[1, i] : offsets[1, i] + w]
        out.append(crop.flip(2) if flip[i] else crop)
    return torch.stack(out)


def test_augment_matches_a_per_image_reference_and_is_deterministic() -> None:
    x = torch.randn(16, 3, 32, 32)
    fill = torch.tensor([-1.0, -2.0, -3.0])
    a = random_crop_flip(x, torch.Generator().manual_seed(5), 4, fill)
    b = random_crop_flip(x, torch.Generator().manual_seed(5), 4, fill)
    c = random_crop_flip(x, torch.Generator().manual_seed(6), 4, fill)
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(a, _reference(x, torch.Generator().manual_seed(5), 4, fill))


def test_make_augment_pads_with_normalised_black() -> None:
    aug = cifar.make_augment("cifar10")
    x = torch.full((64, 3, 32, 32), 9.0)
    out = aug(x, torch.Generator().manual_seed(0))
    black = (-torch.tensor(VARIANTS["cifar10"].mean) / torch.tensor(VARIANTS["cifar10"].std)).view(1, 3, 1, 1)
    assert torch.all((out == 9.0) | torch.isclose(out, black.expand_as(out)))
    assert (out != 9.0).any()  # some image was shifted
