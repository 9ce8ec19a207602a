"""LIBSVM / svmlight text files (gisette, a9a, ...) as dense float64 binary-classification data.

Read with ``sklearn.datasets.load_svmlight_file`` (plain, ``.gz`` or ``.bz2``; one-based indices
as LIBSVM writes them, or zero-based as ``dump_svmlight_file`` does by default: sklearn's "auto").
Labels are mapped to -1 / +1 for ``datasets/convex.py``; every failure is a ``DataFileError``
that names the file.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from compress_train.datasets.errors import DataFileError


def load_libsvm(path: str, max_samples: int | None = None) -> tuple[Tensor, Tensor, str, str, str]:
    """(X, y, name, description, source) from the LIBSVM file ``path``.

    X is dense float64 n x d (d = the largest feature index in the file), y float64 in {-1, +1}:
    the file must hold exactly two distinct label values, the smaller mapped to -1. With
    ``max_samples`` only the first rows are kept (as hard_threshold keeps gisette's first 6,000).
    A missing, unparsable or non-binary file raises ``DataFileError`` naming it.
    """
    from sklearn.datasets import load_svmlight_file

    if max_samples is not None and max_samples < 1:
        raise ValueError(f"dataset.max_samples must be a positive integer or null, but is {max_samples}.")
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataFileError(f"LIBSVM file '{p}' does not exist (dataset.path)")
    try:
        X, y = load_svmlight_file(str(p), dtype=np.float64)
    except Exception as e:  # sklearn raises ValueError, OSError, UnicodeDecodeError, ... on bad input
        raise DataFileError(f"LIBSVM file '{p}' could not be parsed as LIBSVM/svmlight text: "
                            f"{type(e).__name__}: {e}") from e
    labels = np.unique(y)
    if len(labels) != 2:
        shown = ", ".join(f"{v:g}" for v in labels[:10]) + (", ..." if len(labels) > 10 else "")
        raise DataFileError(f"LIBSVM file '{p}' must hold exactly two label values (binary classification), "
                            f"but holds {len(labels)}: {shown}")
    total = X.shape[0]
    n = total if max_samples is None else min(max_samples, total)
    X, y = X[:n].toarray(), np.where(y[:n] == labels[1], 1.0, -1.0)
    rows = f"{n:,} samples" + (f" (the first {n:,} of {total:,})" if n < total else "")
    desc = (f"LIBSVM file {p.name}: {rows} x {X.shape[1]:,} features, labels {labels[0]:g} -> -1, "
            f"{labels[1]:g} -> +1")
    return torch.from_numpy(X), torch.from_numpy(y), f"libsvm:{p.stem}", desc, str(p)


CONVEX_MODELS = ("logreg", "least_squares")


def convex_data(d, log=None) -> tuple[Tensor, Tensor, str, str, str]:
    """The convex task's data (``dataset=libsvm dataset.path=FILE``)."""
    return load_libsvm(d.path, d.get("max_samples"))


IMPLEMENTATION = convex_data
