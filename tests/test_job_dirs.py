"""Sweep job directories: named after the overrides typed, never opening a sub-directory, never past the
file system's 255-byte name limit (a long override list is cut and a hash keeps names apart)."""

from __future__ import annotations

from compress_train.runner import SLUG_MAX, slug


def test_a_short_name_is_the_overrides_with_slashes_replaced():
    assert slug("method=comp_ams/topk_ef_0.01,seed=0") == "method=comp_ams-topk_ef_0.01,seed=0"


def test_a_long_name_is_cut_and_a_hash_keeps_two_apart():
    base = ",".join(f"dataset.key{i}=value{i}" for i in range(30))
    a, b = slug(base + ",seed=0"), slug(base + ",seed=1")
    assert len(a.encode()) <= SLUG_MAX and len(b.encode()) <= SLUG_MAX and a != b
    assert a == slug(base + ",seed=0")  # the same job, the same directory (resume=auto finds it)
    assert a.startswith(base[:100]) and "/" not in a
