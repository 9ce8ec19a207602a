"""dataset=imagenet: the ImageNet image-folder loader (train/<class>/, val/<class>/, ImageFolder
semantics) on a tiny folder written here: class mapping, labels, the two views against torchvision's
transforms, seeded crops, the clear stop on a missing or malformed folder, and one CLI run."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cli_helpers import run_cli, summary
from compress_train.compressors.base import generator_for
from compress_train.datasets.errors import DataFileError
from compress_train.datasets.imagenet import DRAWS, LAYOUT, crop_box, load, load_imagenet
from compress_train.runner.config.check import check_config

CLASSES = ("n03", "n01", "n02")  # written in this order; labels follow the sorted names
TRAIN, VAL = 4, 2


def write_folder(root: Path, classes=CLASSES, train: int = TRAIN, val: int = VAL) -> Path:
    """Small images of varied sizes (JPEG, one PNG per class, upper/lower-case suffixes) plus a stray
    non-image file that ImageFolder skips."""
    rng = np.random.default_rng(0)
    for split, n in (("train", train), ("val", val)):
        for c in classes:
            d = root / split / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (20 + 3 * i, 28 - 2 * i, 3), dtype=np.uint8)
                name = f"{c}_{i}.png" if i == n - 1 else f"{c}_{i}.{'JPEG' if i % 2 else 'jpeg'}"
                Image.fromarray(pixels).save(d / name)
            (d / "notes.txt").write_text("not an image")
    return root


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_folder(tmp_path / "imagenet")


def reference_view(path: str, resize: int, crop: int) -> torch.Tensor:
    from torchvision import transforms as T

    t = T.Compose(
        [T.Resize(resize), T.CenterCrop(crop), T.ToTensor(), T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]
    )
    with open(path, "rb") as f:
        return t(Image.open(f).convert("RGB"))


def test_class_mapping_labels_and_counts(folder: Path) -> None:
    data = load_imagenet(folder, crop=16, resize=18, decode_threads=2)
    assert data.y_train.tolist() == [0] * TRAIN + [1] * TRAIN + [2] * TRAIN  # n01, n02, n03
    assert data.y_test.tolist() == [0] * VAL + [1] * VAL + [2] * VAL
    assert data.num_classes == 3 and data.name == "imagenet-layout-3classes"
    paths = data.augment.images.paths
    assert [Path(p).parent.name for p in paths] == ["n01"] * TRAIN + ["n02"] * TRAIN + ["n03"] * TRAIN
    assert not any(p.endswith(".txt") for p in paths)
    assert torch.equal(data.x_train, torch.arange(3 * TRAIN))  # sample ids; the loader decodes them
    assert len(data.x_test) == 3 * VAL and data.x_test.shape == (3 * VAL, 3, 16, 16)
    assert "3 classes, 12 train / 6 val images" in data.description and data.source == str(folder)


def test_evaluation_view_is_torchvisions_resize_and_center_crop(folder: Path) -> None:
    data = load_imagenet(folder, crop=16, resize=18, decode_threads=2)
    x = data.x_test[0:4]
    assert x.shape == (4, 3, 16, 16) and x.dtype == torch.float32
    paths = data.x_test.images.paths
    for i in range(4):
        assert torch.allclose(x[i], reference_view(paths[i], 18, 16), atol=1e-6)
    assert torch.equal(data.x_test[torch.tensor([3, 0])], torch.stack([x[3], x[0]]))
    # augment: false trains on the same central view
    plain = load_imagenet(folder, crop=16, resize=18, augment=False)
    batch = plain.augment(torch.tensor([5, 1]), generator_for((0, 0, 0)))
    for row, i in zip(batch, (5, 1)):
        assert torch.allclose(row, reference_view(plain.augment.images.paths[i], 18, 16), atol=1e-6)


def test_training_view_is_seeded_and_thread_independent(folder: Path) -> None:
    one = load_imagenet(folder, crop=12, resize=14, decode_threads=1)
    four = load_imagenet(folder, crop=12, resize=14, decode_threads=4)
    ids = torch.tensor([0, 5, 11, 5])
    a = one.augment(ids, generator_for((0, 3, 1)))
    assert a.shape == (4, 3, 12, 12) and a.dtype == torch.float32
    assert torch.equal(a, four.augment(ids, generator_for((0, 3, 1))))
    assert not torch.equal(a, one.augment(ids, generator_for((0, 3, 2))))
    assert not torch.equal(a[1], a[3])  # the same image, two independent crops


def test_crop_box_follows_random_resized_crop() -> None:
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        u = torch.rand(DRAWS, generator=g, dtype=torch.float64).tolist()
        top, left, h, w = crop_box(120, 90, u)
        assert 0 <= top <= 90 - h and 0 <= left <= 120 - w
        assert 0.08 * 0.8 <= h * w / (120 * 90) <= 1.0
        assert 3 / 4 * 0.9 <= w / h <= 4 / 3 * 1.1
    # every try too large (u near 1: the whole area at ratio 4/3 or wider) on a thin image: the central
    # crop, clamped to the widest ratio, as torchvision's fallback
    assert crop_box(400, 10, [0.999] * DRAWS) == (0, (400 - 13) // 2, 10, 13)
    assert crop_box(10, 400, [0.999] * DRAWS) == ((400 - 13) // 2, 0, 13, 10)
    w = h = 50
    area, ratio = 0.08 + 0.92 * 0.5, math.exp(math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * 0.5)
    side = int(round(math.sqrt(area * w * h * ratio)))
    assert crop_box(w, h, [0.5] * (DRAWS - 3) + [0.0, 0.999, 0.0]) == (0, w - side, side, side)


def test_missing_root_or_split_stops_with_the_layout(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match=r"dataset\.root is null") as err:
        load_imagenet(None)
    assert LAYOUT in str(err.value)
    with pytest.raises(DataFileError, match=r"dataset\.root '.*nowhere' is not a directory") as err:
        load_imagenet(tmp_path / "nowhere")
    assert LAYOUT in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFileError, match=r"dataset\.root '.*empty' lacks train/ and val/; expected DIR/train"):
        load_imagenet(tmp_path / "empty")
    write_folder(tmp_path / "noval")
    for p in sorted((tmp_path / "noval" / "val").rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()
    (tmp_path / "noval" / "val").rmdir()
    with pytest.raises(DataFileError, match=r"dataset\.root '.*noval' lacks val/; expected DIR/train"):
        load_imagenet(tmp_path / "noval")


def test_malformed_folders_are_named(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "a")
    (root / "train" / "n04").mkdir()  # a class folder without images
    with pytest.raises(DataFileError, match=r"dataset\.root: .*train.*n04"):
        load_imagenet(root)
    root = write_folder(tmp_path / "b")
    (root / "val" / "n09").mkdir()  # a val class that train/ lacks
    Image.new("RGB", (8, 8)).save(root / "val" / "n09" / "x.JPEG")
    with pytest.raises(DataFileError, match=r"class folders that train/ lacks: \['n09'\]"):
        load_imagenet(root)
    root = tmp_path / "c"
    (root / "train").mkdir(parents=True)
    (root / "val").mkdir()
    with pytest.raises(DataFileError, match=r"dataset\.root: .*train: Couldn't find any class folder"):
        load_imagenet(root)
    root = write_folder(tmp_path / "d")
    bad = root / "val" / "n02" / "n02_0.jpeg"
    bad.write_bytes(b"truncated")
    data = load_imagenet(root, crop=8, resize=8)
    with pytest.raises(DataFileError, match=rf"{bad}: not a readable image"):
        data.x_test[0:6]


def test_bad_options_name_the_key(folder: Path) -> None:
    with pytest.raises(DataFileError, match=r"`dataset.resize` must be an integer >= 32"):
        load_imagenet(folder, crop=32, resize=16)
    with pytest.raises(DataFileError, match=r"`dataset.decode_threads` must be an integer >= 1"):
        load_imagenet(folder, decode_threads=0)
    from omegaconf import OmegaConf

    with pytest.raises(DataFileError, match=r"`dataset.download` must be false for dataset=imagenet"):
        load(OmegaConf.create({"root": str(folder), "download": True}), print)


def test_config_forces_resnet50_and_a_model_override_wins(make_config, folder: Path) -> None:
    cfg = make_config("dataset=imagenet", f"dataset.root={folder}")
    check_config(cfg)
    assert (cfg.model.name, cfg.task, cfg.dataset.crop, cfg.dataset.resize) == ("resnet50", "network", 224, 256)
    check_config(make_config("dataset=imagenet"))  # root null: the loader stops the run, naming dataset.root
    assert make_config("dataset=imagenet", "model=cifar_cnn").model.name == "cifar_cnn"


@pytest.mark.slow
def test_cli_trains_two_steps_on_the_folder(tmp_path: Path, folder: Path) -> None:
    run_dir = tmp_path / "run"
    # cifar_cnn on 32x32 crops keeps the run to seconds (resnet50 works too, ~25 s on 2 cores)
    proc = run_cli(
        "dataset=imagenet",
        f"dataset.root={folder}",
        "dataset.crop=32",
        "dataset.resize=36",
        "model=cifar_cnn",
        "workers=2",
        "train.max_steps=2",
        "train.epochs=null",
        "train.batch_size=4",
        "train.eval_batch_size=4",
        "dataset.decode_threads=2",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    s = summary(run_dir)
    assert s["status"] == "completed"
    assert s["dataset"]["name"] == "imagenet-layout-3classes"
    proc = run_cli("dataset=imagenet", "train.max_steps=1", f"hydra.run.dir={tmp_path / 'none'}", cwd=tmp_path)
    assert proc.returncode != 0 and "dataset.root is null" in proc.stdout + proc.stderr
