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


def test_the_dry_run_names_a_long_jobs_directory_as_hydra_does(tmp_path):
    """``--dry-run`` and resume's renumbering (sweep_adopt) predict each job's directory: through the
    same ``slug`` as ``hydra.sweep.subdir``, so a name past the limit is the cut-and-hashed one."""
    from compress_train.runner.plan import plan

    label = "L" * 240
    jobs = plan(["seed=0,1", f"label={label}", f"hydra.sweep.dir={tmp_path}"], multirun=True).jobs
    typed = f"label={label},seed=0"
    assert jobs[0].directory == f"{tmp_path}/0_{slug(typed)}" and len(slug(typed).encode()) <= SLUG_MAX
