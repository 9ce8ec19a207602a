"""GPU-ready: every compressor and every algorithm runs with ``device=cuda``, payloads stay
on the device, and the bits equal the CPU's wherever the payload's size does not depend on random
draws. Runs wherever CUDA exists (``-m gpu``); skipped here, where there is none."""

from __future__ import annotations

import pytest
import torch
from test_compressors import CFGS, LAYERS, NAMES, build, signal
from test_resume import CASES, SMALL, STEPS, run_in_process

from compress_train.compressors.scope import ScopedCompressor

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
RANDOM_SIZE = {"mvss", "bounded"}  # payload size follows random draws (active set, stochastic widths)


@pytest.mark.parametrize("scope", ["model", "layer"])
@pytest.mark.parametrize("name", NAMES)
def test_compressor_on_cuda(name, scope):
    x = signal(sum(LAYERS), 0) * (10.0 if name == "threshold" else 1.0)
    on_cpu = ScopedCompressor(build(CFGS[name]), LAYERS, scope)
    on_gpu = ScopedCompressor(build(CFGS[name]), LAYERS, scope)
    msg = on_gpu.compress(x.cuda(), seed=1, step=3, worker=0)
    assert all(t.device.type == "cuda" for t in msg.tensors), "payload tensors left the device"
    decoded = on_gpu.decompress(msg)
    assert decoded.device.type == "cuda" and decoded.shape == x.shape and torch.isfinite(decoded).all()
    if name not in RANDOM_SIZE:
        assert msg.bits == on_cpu.compress(x, seed=1, step=3, worker=0).bits


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_algorithm_runs_on_cuda(tmp_path, name):
    own_data = any(o.startswith(("problem=", "dataset=")) for o in CASES[name])
    setup = (
        *(STEPS if own_data else SMALL),
        *CASES[name],
        "workers=2",
        "train.max_steps=3",
        "train.epochs=null",
        "train.tol=null",
        "device=cuda",
    )
    s = run_in_process(tmp_path / "run", *setup)
    assert s["status"] in ("completed", "converged"), s
