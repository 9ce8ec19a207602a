"""The dense 16-bit baselines (issue 15): 16 bits per element read off the payload, the value
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
    x = torch.tensor([1.0, 1 + 2 ** -9, -3.14159, 1e-3, 0.0, 300.0], dtype=dtype)
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
    proc = run_cli(f"hydra.run.dir={run}", "algo=ef_sgd", f"compressor={name}", "workers=2", "threads=1",
                   "train.max_steps=2", "train.log_every=1", "train.eval_every=2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = metrics(run)
    d = rows[0]["elements_up_step"]
    assert d > 0 and all(r["bits_up_step"] == 16 * d for r in rows)
