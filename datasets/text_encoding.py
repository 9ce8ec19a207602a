"""Encoding short texts as Keras-style token-id sequences, shared by the IMDB loader and its
real stand-in (Twitter sentiment): 0 padding, 1 start, 2 out-of-vocabulary, word ids from 3 by
training-set frequency; sequences cut or left-padded to ``maxlen``."""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Sequence

import numpy as np
import torch

from compress_train.datasets.base import ArrayDataset

PAD, START, OOV, INDEX_FROM = 0, 1, 2, 3
WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")


def tokenize(text: str) -> list[str]:
    """Lower-case, drop ``<br />`` tags, return the words (letters/digits, inner apostrophes)."""
    return WORD_RE.findall(re.sub(r"<br\s*/?>", " ", text.lower()))


def build_vocab(train_tokens: Iterable[Sequence[str]], num_words: int) -> dict[str, int]:
    """word -> id (rank + 3) for the words whose id is < ``num_words``, ranked by train count."""
    counts = Counter(w for tokens in train_tokens for w in tokens)
    ranked = sorted(counts, key=lambda w: (-counts[w], w))[: max(0, num_words - INDEX_FROM - 1)]
    return {w: rank + INDEX_FROM for rank, w in enumerate(ranked, start=1)}


def pad_sequences(seqs: Sequence[np.ndarray], maxlen: int) -> np.ndarray:
    """int64 N x maxlen: pre-padded with 0, over-long sequences keep their last ``maxlen`` ids."""
    out = np.zeros((len(seqs), maxlen), dtype=np.int64)
    for i, s in enumerate(seqs):
        s = s[-maxlen:]
        if len(s):
            out[i, maxlen - len(s) :] = s
    return out


def encode_texts(texts: Iterable[str], vocab: dict[str, int], maxlen: int) -> torch.Tensor:
    """Texts -> padded int64 ids: start id, then each word's id (OOV when not in ``vocab``)."""
    seqs = [np.array([START] + [vocab.get(w, OOV) for w in tokenize(t)], dtype=np.int64) for t in texts]
    return torch.from_numpy(pad_sequences(seqs, maxlen))


def text_dataset(
    train: tuple[list[str], np.ndarray],
    test: tuple[list[str], np.ndarray],
    num_words: int,
    maxlen: int,
    name: str,
    description: str,
    source: str,
) -> ArrayDataset:
    """Labelled texts -> ArrayDataset with a train-only vocabulary (shared by aclImdb and tweets)."""
    vocab = build_vocab((tokenize(t) for t in train[0]), num_words)
    return ArrayDataset(
        encode_texts(train[0], vocab, maxlen),
        torch.as_tensor(train[1], dtype=torch.int64),
        encode_texts(test[0], vocab, maxlen),
        torch.as_tensor(test[1], dtype=torch.int64),
        name,
        description,
        source,
    )
