"""The dense 16-bit baselines: 16 bits per element read off the payload, the value
round-to-nearest-even in the wire format, the run's dtype restored, and a run that logs it."""

from __future__ import annotations

import pytest
import torch

from cli_helpers import metrics, run_cli
from compress_train.compressors.base import CompressContext
from compress_train.compressors.bf16 import BF16
from compress_train.compressors.fp16 import FP16


@pytest.mark.parametrize("cls, wire", [(BF16, torch.bfloat16), (FP16, torch.float16)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sixteen_bits_per_element_and_the_rounding(cls, wire, dtype):
    x = torch.tensor([1.0, 1 + 2**-9, -3.14159, 1e-3, 0.0, 300.0], dtype=dtype)
    payload = cls().compress(x, CompressContext())
    assert payload.bits == 16 * x.numel() and payload.elements == x.numel()
    assert payload.tensors["values"].dtype == wire
    decoded = cls().decompress(payload)
    assert decoded.dtype == dtype and torch.equal(decoded, x.to(wire).to(dtype))
    assert not torch.equal(decoded, x)  # it really rounds (1 + 2^-9 is not a bf16; pi is in neither)


def test_fp16_overflows_where_bf16_keeps_the_range():
    x = torch.tensor([1e5, -1e6])
    assert torch.isinf(FP16().decompress(FP16().compress(x, CompressContext()))).all()
    assert torch.isfinite(BF16().decompress(BF16().compress(x, CompressContext()))).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bf16", "fp16"])
def test_a_run_logs_16_bits_per_element(tmp_path, name):
    run = tmp_path / "run"
    proc = run_cli(
        f"hydra.run.dir={run}",
        "algo=ef_sgd",
        f"compressor={name}",
        "workers=2",
        "threads=1",
        "train.max_steps=2",
        "train.log_every=1",
        "train.eval_every=2",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = metrics(run)
    d = rows[0]["elements_up_step"]
    assert d > 0 and all(r["bits_up_step"] == 16 * d for r in rows)


def test_the_sum_is_formed_in_16_bits_by_one_allreduce():
    """As DDP's bf16 hook: the workers' 16-bit payloads are summed in bf16 by one allreduce, decoded
    once, divided by n; bits down = the reduced 16-bit payload."""
    from compress_train.algorithms.communicator import SimCommunicator
    from compress_train.algorithms.ef_sgd import EFSGD
    from compress_train.compressors.scope import ScopedCompressor

    torch.manual_seed(0)
    g = {w: torch.randn(6) for w in range(3)}
    params = torch.zeros(6)
    algo = EFSGD(params, SimCommunicator(3), ScopedCompressor(BF16(), [6], "model"), lr=1.0, ef="none")
    report = algo.step(g, 0)
    wire = [g[w].to(torch.bfloat16) for w in range(3)]
    total = wire[0].clone()
    for t in wire[1:]:
        total += t  # rounded to bf16 at each addition
    assert torch.equal(params, -(total.to(torch.float32) / 3))
    assert report.bits_up == 16 * 6 and report.bits_down == 16 * 6
    assert [kind for kind, _ in algo.comm.take_collectives()] == ["allreduce"]
