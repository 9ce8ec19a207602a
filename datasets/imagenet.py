"""ImageNet (ILSVRC-2012) from an image folder (``dataset=imagenet dataset.root=DIR``), decoded on demand.

Layout (torchvision ``ImageFolder``): ``DIR/train/<class>/*.JPEG`` and ``DIR/val/<class>/*.JPEG``
(the validation images sorted into their class folders, e.g. by the usual ``valprep.sh``). Classes
are the sorted folder names of ``train/`` (label = position in that list, ImageFolder's
``class_to_idx``); ``val/`` uses the same mapping and may not hold a folder ``train/`` lacks. Image
files are those with torchvision's image extensions (``.jpeg``, ``.jpg``, ``.png``, ... any case),
in ImageFolder's order (class, then sorted path). Nothing is substituted: a missing root, a missing
``train/`` or ``val/``, a class folder without images or an unreadable image stops the run with a
``DataFileError`` naming ``dataset.root`` (and the expected layout) or the file.

The transforms are the DEF authors' (github anxuthu/DEF ``utils/get_dataset.py``: torchvision's
ImageNet recipe), with ImageNet's mean/std normalisation (0.485, 0.456, 0.406) / (0.229, 0.224,
0.225) after scaling pixels to [0, 1]:

* training (``augment: true``): RandomResizedCrop to ``crop`` x ``crop`` (scale (0.08, 1), aspect
  ratio (3/4, 4/3) log-uniform, 10 tries then the central crop, bilinear with antialiasing) and a
  horizontal flip with probability 1/2. The random numbers come from the generator the trainer
  seeds with (run seed, step, worker), 23 uniforms per image drawn up front, so every launcher and
  every ``decode_threads`` draws the same crops;
* evaluation (and training with ``augment: false``): resize the shorter side to ``resize``
  (bilinear, antialiased), then the central ``crop`` x ``crop``.

How it plugs into the in-memory ``ArrayDataset`` the network task consumes (no runner change):
1.28M decoded images do not fit in memory, so ``x_train`` holds the training SAMPLE IDS
(``torch.arange(N)``, int64) and ``augment`` is the loader that turns a batch of ids into the
float N x 3 x ``crop`` x ``crop`` batch (random or central view, as above) on the ids' device; the
task indexes ``x_train`` with each worker's batch and always calls ``augment`` (it is set even when
``augment: false``). ``x_test`` is an ``ImageFolderView``: ``x_test[i:j]`` decodes those
validation images (central view) into one tensor, which is all the task's evaluation asks of it.
Decoding runs in a pool of ``decode_threads`` threads (PIL releases the GIL while decoding).
``name`` is ``imagenet`` for a 1000-class folder, ``imagenet-layout-<k>classes`` otherwise.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence, cast

import numpy as np
import torch

from compress_train.datasets.base import ArrayDataset
from compress_train.datasets.errors import DataFileError

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
SCALE = (0.08, 1.0)
RATIO = (3.0 / 4.0, 4.0 / 3.0)
ATTEMPTS = 10
DRAWS = 2 * ATTEMPTS + 3  # per image: (area, log-ratio) per attempt, top, left, flip
LAYOUT = "DIR/train/<class>/*.JPEG and DIR/val/<class>/*.JPEG (torchvision ImageFolder layout)"


def _image_extensions() -> tuple[str, ...]:
    from torchvision.datasets.folder import IMG_EXTENSIONS

    return IMG_EXTENSIONS


def scan(directory: Path, class_to_idx: dict[str, int] | None = None) -> tuple[list[str], list[tuple[str, int]]]:
    """(classes, [(path, label)]) of one split folder, ImageFolder's way; ``class_to_idx`` given
    (val): that mapping, with classes it lacks refused and empty ones allowed."""
    from torchvision.datasets.folder import find_classes, make_dataset

    given = class_to_idx is not None
    try:
        classes, found = find_classes(directory)
        if class_to_idx is None:
            class_to_idx = found
        else:
            extra = sorted(set(classes) - set(class_to_idx))
            if extra:
                raise DataFileError(
                    f"dataset.root: {directory} holds class folders that train/ lacks: "
                    f"{extra[:5]}{' ...' if len(extra) > 5 else ''} ({len(extra)} in all); "
                    f"expected {LAYOUT} with the same class folders"
                )
        samples = make_dataset(directory, class_to_idx, extensions=_image_extensions(), allow_empty=given)
    except FileNotFoundError as e:  # no class folder, or a class folder without images
        raise DataFileError(f"dataset.root: {directory}: {str(e).strip().rstrip('.')}; expected {LAYOUT}") from None
    if not samples:
        raise DataFileError(
            f"dataset.root: {directory} holds no images with extensions "
            f"{', '.join(_image_extensions())}; expected {LAYOUT}"
        )
    return sorted(class_to_idx, key=class_to_idx.__getitem__), samples


def _open(path: str):
    from PIL import Image

    try:
        with open(path, "rb") as f:
            return Image.open(f).convert("RGB")
    except Exception as e:  # missing, truncated, not an image
        raise DataFileError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None


def crop_box(width: int, height: int, u: Sequence[float]) -> tuple[int, int, int, int]:
    """RandomResizedCrop's (top, left, h, w) for a ``width`` x ``height`` image from ``DRAWS``
    uniforms in [0, 1): torchvision's ``RandomResizedCrop.get_params`` with its draws made explicit."""
    area = height * width
    lo, hi = math.log(RATIO[0]), math.log(RATIO[1])
    for a in range(ATTEMPTS):
        target = area * (SCALE[0] + (SCALE[1] - SCALE[0]) * u[2 * a])
        aspect = math.exp(lo + (hi - lo) * u[2 * a + 1])
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = min(int(u[-3] * (height - h + 1)), height - h)
            left = min(int(u[-2] * (width - w + 1)), width - w)
            return top, left, h, w
    in_ratio = width / height  # fallback: the central crop, clamped to the ratio range
    if in_ratio < RATIO[0]:
        w, h = width, int(round(width / RATIO[0]))
    elif in_ratio > RATIO[1]:
        h, w = height, int(round(height * RATIO[1]))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


class FolderImages:
    """The image files of one split and the two views of them, as normalised float tensors."""

    def __init__(self, paths: Sequence[str], crop: int, resize: int, threads: int):
        self.paths, self.crop, self.resize, self.threads = list(paths), crop, resize, threads
        self.mean = torch.tensor(MEAN).view(3, 1, 1)
        self.std = torch.tensor(STD).view(3, 1, 1)
        self._pool: ThreadPoolExecutor | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def _tensor(self, img) -> torch.Tensor:
        from torchvision.transforms import functional as TF

        return (TF.pil_to_tensor(img).float().div_(255.0) - self.mean) / self.std

    def central(self, i: int) -> torch.Tensor:
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms import functional as TF

        img = TF.resize(_open(self.paths[i]), self.resize, InterpolationMode.BILINEAR, antialias=True)
        return self._tensor(TF.center_crop(img, [self.crop, self.crop]))

    def random(self, i: int, u: Sequence[float]) -> torch.Tensor:
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms import functional as TF

        img = _open(self.paths[i])
        top, left, h, w = crop_box(img.width, img.height, u)
        img = TF.resized_crop(img, top, left, h, w, [self.crop, self.crop], InterpolationMode.BILINEAR, antialias=True)
        if u[-1] < 0.5:
            img = TF.hflip(img)
        return self._tensor(img)

    def _map(self, fn: Callable, *args) -> list[torch.Tensor]:
        if self.threads <= 1 or len(args[0]) <= 1:
            return [fn(*a) for a in zip(*args)]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="imagenet-decode")
        return list(self._pool.map(fn, *args))

    def central_batch(self, ids: Sequence[int]) -> torch.Tensor:
        return torch.stack(self._map(self.central, list(ids))) if len(ids) else torch.empty(0, 3, self.crop, self.crop)

    def random_batch(self, ids: Sequence[int], generator: torch.Generator) -> torch.Tensor:
        draws = torch.rand(len(ids), DRAWS, generator=generator, dtype=torch.float64).tolist()
        return torch.stack(self._map(self.random, list(ids), draws))

    def __getstate__(self):  # a thread pool does not pickle
        return {**self.__dict__, "_pool": None}


class ImageFolderView:
    """``view[i:j]`` / ``view[ids]``: those images' central view, float N x 3 x crop x crop (CPU)."""

    def __init__(self, images: FolderImages):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.images), 3, self.images.crop, self.images.crop)

    def __getitem__(self, key) -> torch.Tensor:
        ids: Sequence[int]
        if isinstance(key, slice):
            ids = range(len(self.images))[key]
        elif isinstance(key, (int, np.integer)):
            return self.images.central(int(range(len(self.images))[key]))
        else:
            ids = np.asarray(torch.as_tensor(key).cpu()).reshape(-1).tolist()
        return self.images.central_batch(ids)

    def to(self, device) -> ImageFolderView:  # decoded batches are moved by the caller
        return self


class FolderBatch:
    """The training loader in ``augment``'s place: (sample ids, generator) -> the batch's images on
    the ids' device, the random view when ``random`` else the central one."""

    def __init__(self, images: FolderImages, random: bool):
        self.images, self.random = images, random

    def __call__(self, ids: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        index = ids.detach().cpu().reshape(-1).tolist()
        x = self.images.random_batch(index, generator) if self.random else self.images.central_batch(index)
        return x.to(ids.device)


def _positive_int(key: str, value, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise DataFileError(f"`dataset.{key}` must be an integer >= {minimum}, but is {value!r}")
    return value


def load_imagenet(
    root: str | Path | None, crop: int = 224, resize: int = 256, augment: bool = True, decode_threads: int = 4
) -> ArrayDataset:
    """The folder at ``root`` as described in the module docstring."""
    crop = _positive_int("crop", crop)
    resize = _positive_int("resize", resize, crop)
    threads = _positive_int("decode_threads", decode_threads)
    if root is None:
        raise DataFileError(
            f"dataset.root is null, but ImageNet ships in no package and is never downloaded: "
            f"pass dataset.root=DIR with {LAYOUT}"
        )
    directory = Path(root).expanduser()
    if not directory.is_dir():
        raise DataFileError(f"dataset.root '{directory}' is not a directory; expected {LAYOUT}")
    missing = [s for s in ("train", "val") if not (directory / s).is_dir()]
    if missing:
        raise DataFileError(
            f"dataset.root '{directory}' lacks {' and '.join(f'{s}/' for s in missing)}; expected {LAYOUT}"
        )
    classes, train = scan(directory / "train")
    _, val = scan(directory / "val", {c: i for i, c in enumerate(classes)})
    train_images = FolderImages([p for p, _ in train], crop, resize, threads)
    val_images = FolderImages([p for p, _ in val], crop, resize, threads)
    y_train = torch.tensor([y for _, y in train], dtype=torch.int64)
    y_test = torch.tensor([y for _, y in val], dtype=torch.int64)
    k = len(classes)
    name = "imagenet" if k == 1000 else f"imagenet-layout-{k}classes"
    view = f"RandomResizedCrop {crop} + flip" if augment else f"resize {resize} + center crop {crop}"
    desc = (
        f"image folder in the ImageNet layout, {k} classes, {len(y_train):,} train / {len(y_test):,} val "
        f"images from {directory} (decoded on demand; training: {view}; evaluation: resize {resize} + "
        f"center crop {crop})"
    )
    return ArrayDataset(
        torch.arange(len(y_train)),
        y_train,
        cast(torch.Tensor, ImageFolderView(val_images)),  # decoded on demand, indexed like the tensor it stands for
        y_test,
        name,
        desc,
        str(directory),
        FolderBatch(train_images, random=bool(augment)),
    )


def load(d, log: Callable[[str], None]) -> ArrayDataset:
    if d.get("download", False):
        raise DataFileError(
            "`dataset.download` must be false for dataset=imagenet (ImageNet has no automatic "
            "download: get ILSVRC-2012 from image-net.org and pass dataset.root=DIR), but is "
            f"{d.get('download')!r}"
        )
    return load_imagenet(
        d.root,
        crop=d.get("crop", 224),
        resize=d.get("resize", 256),
        augment=d.get("augment", True),
        decode_threads=d.get("decode_threads", 4),
    )


IMPLEMENTATION = load
