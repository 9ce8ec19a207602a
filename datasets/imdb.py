"""IMDB movie-review sentiment: real readers of Keras' ``imdb.npz`` and the original ``aclImdb/``.

Token ids follow ``keras.datasets.imdb``: 0 padding, 1 start, 2 out-of-vocabulary, and the word
of frequency rank r (1 = most frequent) is id r + 3 (``index_from=3``; id 3 is never used, as in
Keras). Ids >= ``num_words`` become 2, so the top ``num_words - 4`` words are kept and every id is
< ``num_words``. Every sequence starts with 1 and is cut/padded to ``maxlen`` like Keras'
``pad_sequences`` defaults: zeros are added in FRONT (pre-padding) and over-long sequences keep
their LAST ``maxlen`` tokens, so an LSTM's last state always follows the real text.

* ``imdb.npz``: ``x_train``/``x_test`` object arrays of lists of word ranks (the file stores
  ranks; the start id and the +3 offset are added here, as Keras' ``load_data`` does),
  ``y_train``/``y_test`` 0/1. File order is kept.
* ``aclImdb/{train,test}/{neg,pos}/*.txt``: one review per file, label pos=1 neg=0 (neg first,
  files sorted by name). Text is lower-cased, ``<br />`` removed and split by ``WORD_RE``; the
  vocabulary is ranked on the TRAIN split only (ties by word).

``dataset.root`` may be ``imdb.npz`` itself, a folder holding it (preferred when both exist) or
``aclImdb/``, or the ``aclImdb`` folder. With no root: ``synthetic`` -> a SYNTHETIC set of the
same shape; else ``fallback="tweets"`` -> the real Twitter sentiment corpus (``datasets/tweets.py``);
else a DataFileError says how to provide IMDB. Tensors: int64 N x maxlen ids, int64 labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from compress_train.datasets.base import ArrayDataset
from compress_train.datasets.errors import DataFileError
from compress_train.datasets.synthetic import synthetic_sequences
from compress_train.datasets.text_encoding import (  # noqa: F401
    INDEX_FROM,
    OOV,
    PAD,
    START,
    WORD_RE,
    build_vocab,
    encode_texts,
    pad_sequences,
    text_dataset,
    tokenize,
)

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _npz_split(path: Path, xs: np.ndarray, ys: np.ndarray, key: str, num_words: int, maxlen: int):
    if len(xs) != len(ys):
        raise DataFileError(f"{path}: x_{key} holds {len(xs)} reviews but y_{key} {len(ys)} labels")
    seqs = []
    for i, ranks in enumerate(xs):
        try:
            ids = np.asarray(ranks, dtype=np.int64).reshape(-1) + INDEX_FROM
        except (TypeError, ValueError) as e:
            raise DataFileError(f"{path}: x_{key}[{i}] is not a list of word indices ({e})") from e
        if ids.size and ids.min() < INDEX_FROM:
            raise DataFileError(f"{path}: x_{key}[{i}] holds a negative word index")
        ids[ids >= num_words] = OOV
        seqs.append(np.concatenate([[START], ids]))
    return torch.from_numpy(pad_sequences(seqs, maxlen)), torch.from_numpy(np.asarray(ys, dtype=np.int64))


def read_npz(path: Path, num_words: int, maxlen: int) -> ArrayDataset:
    """Keras' ``imdb.npz`` -> ArrayDataset (see the module docstring)."""
    try:
        with np.load(path, allow_pickle=True) as f:
            missing = [k for k in NPZ_KEYS if k not in f.files]
            if missing:
                raise DataFileError(f"{path}: lacks array(s) {', '.join(missing)} (has {', '.join(f.files)})")
            arrays = {k: f[k] for k in NPZ_KEYS}
    except DataFileError:
        raise
    except Exception as e:
        raise DataFileError(f"{path}: not a readable imdb.npz ({type(e).__name__}: {e})") from e
    x_tr, y_tr = _npz_split(path, arrays["x_train"], arrays["y_train"], "train", num_words, maxlen)
    x_te, y_te = _npz_split(path, arrays["x_test"], arrays["y_test"], "test", num_words, maxlen)
    desc = (
        f"IMDB movie reviews (Keras imdb.npz), {len(y_tr):,} train / {len(y_te):,} test, "
        f"top {num_words} word ids, {maxlen} tokens (pre-padded, last kept), from {path}"
    )
    return ArrayDataset(x_tr, y_tr, x_te, y_te, "imdb", desc, str(path))


def _read_acl_split(folder: Path) -> tuple[list[str], np.ndarray]:
    texts, labels = [], []
    for label, sub in ((0, "neg"), (1, "pos")):
        d = folder / sub
        if not d.is_dir():
            raise DataFileError(f"{d}: missing (aclImdb needs train/ and test/, each with pos/ and neg/)")
        files = sorted(d.glob("*.txt"))
        if not files:
            raise DataFileError(f"{d}: holds no .txt reviews")
        for p in files:
            try:
                texts.append(p.read_text(encoding="utf-8", errors="replace"))
            except OSError as e:
                raise DataFileError(f"{p}: unreadable ({e.strerror or e})") from e
        labels += [label] * len(files)
    return texts, np.asarray(labels, dtype=np.int64)


def read_acl(folder: Path, num_words: int, maxlen: int) -> ArrayDataset:
    """The original ``aclImdb/`` folder -> ArrayDataset (see the module docstring)."""
    train, test = _read_acl_split(folder / "train"), _read_acl_split(folder / "test")
    desc = (
        f"IMDB movie reviews (aclImdb text), {len(train[1]):,} train / {len(test[1]):,} test, "
        f"top {num_words} word ids from the train split, {maxlen} tokens (pre-padded, last kept), "
        f"from {folder}"
    )
    return text_dataset(train, test, num_words, maxlen, "imdb", desc, str(folder))


def _source(root: Path) -> Path:
    if root.is_file() and root.suffix == ".npz":
        return root
    if not root.is_dir():
        raise DataFileError(f"dataset.root '{root}' does not exist")
    for candidate in (root / "imdb.npz", root / "aclImdb"):
        if candidate.exists():
            return candidate
    if (root / "train").is_dir() and (root / "test").is_dir():
        return root
    raise DataFileError(
        f"dataset.root '{root}' holds neither imdb.npz nor aclImdb/ "
        f"(nor train/ and test/ with pos/ and neg/ review files)"
    )


def load_imdb(
    root: str | Path | None,
    num_words: int = 1000,
    maxlen: int = 200,
    synthetic: bool = False,
    fallback: str | None = None,
    log: Callable[[str], None] = print,
) -> ArrayDataset:
    """Load IMDB from ``root``, or a named stand-in when there is none (module docstring)."""
    if not isinstance(num_words, int) or num_words < 5:
        raise DataFileError(f"`dataset.num_words` must be an integer >= 5, but is {num_words!r}")
    if not isinstance(maxlen, int) or maxlen < 1:
        raise DataFileError(f"`dataset.maxlen` must be an integer >= 1, but is {maxlen!r}")
    if fallback not in (None, "tweets"):
        raise DataFileError(f"`dataset.fallback` must be null or 'tweets', but is {fallback!r}")
    if root is not None:
        src = _source(Path(root).expanduser())
        return read_npz(src, num_words, maxlen) if src.suffix == ".npz" else read_acl(src, num_words, maxlen)
    if synthetic:
        data = synthetic_sequences("imdb", "IMDB", num_words, maxlen)
        log(
            f"IMDB: no dataset.root given and dataset.synthetic=true, so using a SYNTHETIC stand-in "
            f"of the same shape ({data.name}) - a smoke test, not IMDB results"
        )
        return data
    if fallback == "tweets":
        from compress_train.datasets.tweets import load_tweets

        data = load_tweets(num_words, maxlen)
        log(
            f"IMDB: no dataset.root given (IMDB is not shipped by any package); dataset.fallback=tweets, "
            f"so using REAL Twitter sentiment data standing in for IMDB ({data.name}: "
            f"{len(data.y_train):,} train / {len(data.y_test):,} test texts)"
        )
        return data
    raise DataFileError(
        "IMDB is not shipped by any package and dataset.root is not set. Download imdb.npz "
        "(https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb.npz) or aclImdb "
        "(https://ai.stanford.edu/~amaas/data/sentiment/) and pass dataset.root=DIR, or set "
        "dataset.fallback=tweets (real Twitter sentiment) or dataset.synthetic=true (smoke tests)"
    )


def load(d, log: Callable[[str], None]) -> ArrayDataset:
    """The network task's data (``dataset=imdb``)."""
    return load_imdb(
        d.root,
        num_words=d.get("num_words", 1000),
        maxlen=d.get("maxlen", 200),
        synthetic=d.get("synthetic", False),
        fallback=d.get("fallback"),
        log=log,
    )


IMPLEMENTATION = load
