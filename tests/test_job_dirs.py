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


def test_directories_alone_name_the_same_jobs_without_composing_each(tmp_path, monkeypatch):
    """resume=auto's start-up needs only where each job writes: ``sizes=False`` composes the sweep once,
    not once per job shape, and names the same directories."""
    from compress_train.runner import plan as plan_module

    args = ["experiment=def/table4", "scale=ci", f"hydra.sweep.dir={tmp_path}"]
    full = plan_module.plan(args, multirun=True)
    calls = []
    real = plan_module.compose
    monkeypatch.setattr(plan_module, "compose", lambda *a, **k: calls.append(1) or real(*a, **k))
    quick = plan_module.plan(args, multirun=True, sizes=False)
    assert [j.directory for j in quick.jobs] == [j.directory for j in full.jobs] and len(quick.jobs) > 1
    assert len(calls) == 1 and all(j.steps is None for j in quick.jobs)
