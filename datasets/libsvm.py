"""LIBSVM / svmlight text files (gisette, a9a, ...) as dense float64 binary-classification data.

Read with ``sklearn.datasets.load_svmlight_file`` (plain, ``.gz`` or ``.bz2``). The indexing is
explicit, never guessed from the data: one-based as LIBSVM's format defines it (``dataset.zero_based:
false``, the default; an index 0 is then an error naming its line), or zero-based as
``dump_svmlight_file`` writes by default (``dataset.zero_based: true``). NaN and infinite labels or
values are rejected with the file and line. Labels are mapped to -1 / +1 for ``datasets/convex.py``;
every failure is a ``DataFileError`` that names the file.
"""

from __future__ import annotations

import bz2
import gzip
import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from compress_train.datasets.errors import DataFileError


def _open_text(p: Path):
    """The file's text lines, decompressed by extension as sklearn does (.gz, .bz2)."""
    opener = gzip.open if p.suffix == ".gz" else bz2.open if p.suffix == ".bz2" else open
    return opener(p, "rt", encoding="utf-8", errors="replace")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _line_problem(tokens: list[str], zero_based: bool) -> str | None:
    """What is wrong with one line's tokens (label, then ``index:value`` pairs), or None."""
    for v in (v for v in tokens[0].split(",") if v):
        number = _number(v)
        if number is None:
            return f"label {tokens[0]!r} is not a number"
        if not math.isfinite(number):
            return f"label {tokens[0]!r} is not a finite number"
    previous = None
    for token in tokens[1:]:
        index, colon, value = token.partition(":")
        if index == "qid":
            continue
        if not colon or not index.strip().isdigit():
            return f"{token!r} is not an index:value pair with an integer index"
        if not zero_based and int(index) == 0:
            return (
                f"feature index 0 in {token!r}, but the file is read as one-based (LIBSVM's "
                "format; set dataset.zero_based=true for a zero-based file)"
            )
        number = _number(value)
        if number is None:
            return f"value {token!r} is not a number"
        if not math.isfinite(number):
            return f"value {token!r} is not a finite number"
        if previous is not None and int(index) <= previous:
            return (
                f"feature index {int(index)} in {token!r} follows index {previous}: indices must increase along a line"
            )
        previous = int(index)
    return None


def _first_bad_line(p: Path, zero_based: bool) -> tuple[int, str] | None:
    """(line number, what is wrong) of the first line that is not LIBSVM text (a label that is not a
    number, a token that is not ``index:value``, indices out of order), holds a non-finite label or
    value, or an index 0 in a one-based file; None if there is none."""
    with _open_text(p) as lines:
        for number, line in enumerate(lines, start=1):
            tokens = line.split("#", 1)[0].split()
            if not tokens:
                continue
            problem = _line_problem(tokens, zero_based)
            if problem is not None:
                return number, problem
    return None


def _check_path(p: Path) -> None:
    if p.is_dir():
        raise DataFileError(
            f"LIBSVM file '{p}' is a directory, not a file: dataset.path must name the LIBSVM file itself"
        )
    if not p.exists():
        raise DataFileError(f"LIBSVM file '{p}' does not exist (dataset.path)")
    if not p.is_file():
        raise DataFileError(f"LIBSVM file '{p}' is not a regular file (dataset.path)")


def load_libsvm(
    path: str, max_samples: int | None = None, zero_based: bool = False
) -> tuple[Tensor, Tensor, str, str, str]:
    """(X, y, name, description, source) from the LIBSVM file ``path``.

    X is dense float64 n x d (d = the largest feature index in the file, plus one if ``zero_based``),
    y float64 in {-1, +1}: the file must hold exactly two distinct label values, the smaller mapped
    to -1. With ``max_samples`` only the first rows are kept (as hard_threshold keeps gisette's first
    6,000). A missing, unparsable, non-finite or non-binary file, or an index 0 in a one-based file,
    raises ``DataFileError`` naming it (and the line, where one line is at fault).
    """
    from sklearn.datasets import load_svmlight_file

    if max_samples is not None and max_samples < 1:
        raise ValueError(f"dataset.max_samples must be a positive integer or null, but is {max_samples}.")
    if not isinstance(zero_based, bool):
        raise ValueError(f"dataset.zero_based must be true or false, but is {zero_based!r}.")
    p = Path(path).expanduser()
    _check_path(p)
    try:
        X, y = load_svmlight_file(str(p), dtype=np.float64, zero_based=zero_based)
    except Exception as e:  # sklearn raises ValueError, OSError, UnicodeDecodeError, ... on bad input
        bad = _first_bad_line(p, zero_based) if isinstance(e, ValueError) else None
        if bad is not None:
            raise DataFileError(f"LIBSVM file '{p}', line {bad[0]}: {bad[1]}") from e
        raise DataFileError(
            f"LIBSVM file '{p}' could not be parsed as LIBSVM/svmlight text: {type(e).__name__}: {e}"
        ) from e
    if not (np.isfinite(y).all() and np.isfinite(X.data).all()):
        bad = _first_bad_line(p, zero_based)
        where = f", line {bad[0]}: {bad[1]}" if bad else " holds NaN or infinite values"
        raise DataFileError(f"LIBSVM file '{p}'{where}")
    if X.shape[0] == 0:
        raise DataFileError(f"LIBSVM file '{p}' holds no samples: it is empty or holds only comments")
    labels = np.unique(y)
    if len(labels) != 2:
        shown = ", ".join(f"{v:g}" for v in labels[:10]) + (", ..." if len(labels) > 10 else "")
        raise DataFileError(
            f"LIBSVM file '{p}' must hold exactly two label values (binary classification), "
            f"but holds {len(labels)}: {shown}"
        )
    total = X.shape[0]
    n = total if max_samples is None else min(max_samples, total)
    X, y = X[:n].toarray(), np.where(y[:n] == labels[1], 1.0, -1.0)
    rows = f"{n:,} samples" + (f" (the first {n:,} of {total:,})" if n < total else "")
    base = "zero-based" if zero_based else "one-based"
    desc = (
        f"LIBSVM file {p.name}: {rows} x {X.shape[1]:,} features ({base} indices), labels {labels[0]:g} -> -1, "
        f"{labels[1]:g} -> +1"
    )
    return torch.from_numpy(X), torch.from_numpy(y), f"libsvm:{p.stem}", desc, str(p)


CONVEX_MODELS = ("logreg", "least_squares")


def convex_data(d, log=None) -> tuple[Tensor, Tensor, str, str, str]:
    """The convex task's data (``dataset=libsvm dataset.path=FILE``)."""
    return load_libsvm(d.path, d.get("max_samples"), d.get("zero_based", False))


IMPLEMENTATION = convex_data
