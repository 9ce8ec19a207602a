"""The fast paths of the sparsifiers give what the plain torch expressions give.

Top-k: the sampled path (``compressors/topk.py``) against ``torch.topk(x.abs(), k)`` on many vectors
(normal, heavy-tailed, ties, all-equal, mostly zero, NaN, a misleading sample; k = 1 .. d): the same
selected set, the same values, the same decoded vector and bits. Threshold: the chunked numpy pass
against ``(x.abs() >= lam).nonzero()``, payload for payload. Random-k: the support sampler draws k
distinct indices, uniformly, reproducibly from the generator, and a receiver without any cache
decodes what the sender meant.
"""

from __future__ import annotations

import math

import pytest
import torch

from compress_train.compressors import topk as topk_module
from compress_train.compressors.base import CompressContext, Payload, generator_for, sparse_decode, sparse_payload
from compress_train.compressors.randk import RandK, distinct_sample
from compress_train.compressors.rbgs import RBGS
from compress_train.compressors.threshold import Threshold
from compress_train.compressors.topk import SAMPLE, SAMPLED_MIN_NUMEL, TopK, scatter_decode, topk_indices

D = 2 * SAMPLED_MIN_NUMEL  # above the threshold: the sampled path


def vector(kind: str, d: int = D, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(d, generator=g)
    if kind == "heavy":  # Cauchy: a few huge entries
        x = torch.tan(math.pi * (torch.rand(d, generator=g) - 0.5))
    elif kind == "layers":  # a model's flat gradient: blocks of very different scales
        x = x * torch.tensor([1e-4, 1.0, 3e-2, 10.0]).repeat_interleave(d // 4)
    elif kind == "ties":  # small integers: thousands of entries share each magnitude
        x = torch.randint(-20, 21, (d,), generator=g).float()
    elif kind == "equal":
        x = torch.full((d,), -0.5)
    elif kind == "zeros":  # mostly exact zeros (and -0.0): the threshold may be 0
        x = torch.where(torch.rand(d, generator=g) < 0.999, torch.zeros(d), x)
        x[::7] = -0.0
    elif kind == "nan":  # torch.topk ranks NaN above everything
        x[::9973] = float("nan")
    elif kind == "misleading":  # the strided sample sees only huge entries: a threshold too high
        x = torch.where(torch.arange(d) % (d // SAMPLE) == 0, x * 1e3, x)
    elif kind == "misleading_low":  # ... only tiny ones: a threshold too low, most entries candidates
        x = torch.where(torch.arange(d) % (d // SAMPLE) == 0, x * 1e-3, x)
    return x


def reference_payload(x: torch.Tensor, k: int) -> Payload:
    return sparse_payload(x, torch.topk(x.abs(), k, sorted=False).indices)


def same_decoded(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(), b.nan_to_num())


KINDS = ["normal", "heavy", "layers", "ties", "equal", "zeros", "nan", "misleading", "misleading_low"]
KS = [1, 7, D // 1000, D // 100, D // 8]


@pytest.mark.parametrize("kind", KINDS)
def test_topk_is_torch_topk(kind):
    x = vector(kind)
    for k in KS:
        assert topk_module._uses_sampled(x, k)
        got = topk_indices(x, k)
        ref = torch.topk(x.abs(), k, sorted=False)
        assert got.dtype == torch.int64 and got.numel() == k
        assert set(got.tolist()) == set(ref.indices.tolist()), (kind, k)
        assert same_decoded(x[got].abs().sort().values, ref.values.sort().values)
        comp = TopK(ratio=None, k=k)
        payload, want = comp.compress(x, CompressContext()), reference_payload(x, k)
        assert payload.bits == want.bits == 64 * k and payload.elements == k
        assert payload.tensors["indices"].dtype == torch.int32 and payload.tensors["values"].dtype == torch.float32
        assert same_decoded(comp.decompress(payload), sparse_decode(want))


@pytest.mark.parametrize("k", [D // 8 + 1, D // 2, D - 1, D])
def test_topk_large_k_and_k_equal_d(k):
    x = vector("normal", seed=3)
    assert not topk_module._uses_sampled(x, k)
    assert set(topk_indices(x, k).tolist()) == set(torch.topk(x.abs(), k).indices.tolist())
    comp = TopK(ratio=None, k=k)
    assert torch.equal(comp.decompress(comp.compress(x, CompressContext())), sparse_decode(reference_payload(x, k)))


@pytest.mark.parametrize("ratio", [0.01, 0.001])
def test_topk_ratio_on_the_sampled_path_sends_increasing_indices(ratio):
    x = vector("layers", seed=5)
    payload = TopK(ratio=ratio).compress(x, CompressContext())
    idx = payload.tensors["indices"].long()
    assert payload.elements == math.floor(ratio * D) and torch.all(idx[1:] > idx[:-1])
    assert torch.equal(payload.tensors["values"], x[idx])


@pytest.mark.parametrize("kind,full_calls", [("normal", 0), ("ties", 1), ("equal", 1)])
def test_topk_defers_to_torch_topk_only_when_the_kth_magnitude_is_shared(monkeypatch, kind, full_calls):
    calls = []
    full = topk_module.topk_full
    monkeypatch.setattr(topk_module, "topk_full", lambda x, k: calls.append(k) or full(x, k))
    topk_indices(vector(kind), D // 100)
    assert len(calls) == full_calls


def test_topk_misleading_sample_lowers_the_threshold_then_falls_back(monkeypatch):
    taus, calls = [], []
    sample, full = topk_module._sample_threshold, topk_module.topk_full
    monkeypatch.setattr(topk_module, "_sample_threshold", lambda *a: taus.append(sample(*a)) or taus[-1])
    monkeypatch.setattr(topk_module, "topk_full", lambda x, k: calls.append(k) or full(x, k))
    x = vector("misleading")
    k = D // 1000
    assert set(topk_indices(x, k).tolist()) == set(torch.topk(x.abs(), k).indices.tolist())
    assert len(taus) == topk_module.RETRIES + 1 and taus == sorted(taus, reverse=True) and taus[-1] < taus[0]
    assert calls == [k]


def test_topk_small_vectors_keep_torch_topk_payload():
    x = vector("ties", d=1000)
    want = reference_payload(x, 10)
    got = TopK(ratio=None, k=10).compress(x, CompressContext())
    assert torch.equal(got.tensors["indices"], want.tensors["indices"])
    assert torch.equal(got.tensors["values"], want.tensors["values"])


# --------------------------------------------------------------------------- threshold


@pytest.mark.parametrize("lam", [0.0, 1e-3, 0.3, 2.576, 1e3])
@pytest.mark.parametrize("kind", ["normal", "zeros", "nan"])
def test_threshold_payload_is_the_torch_expression(lam, kind):
    x = vector(kind, seed=1)
    x[:4] = torch.tensor([lam, -lam, lam, -lam], dtype=torch.float32)  # exactly at +-lam (as float32)
    x[4:6] = torch.nextafter(x[:2], torch.zeros(2))  # just below
    comp = Threshold(lam)
    got = comp.compress(x, CompressContext())
    want = sparse_payload(x, (x.abs() >= lam).nonzero().view(-1))
    for name in ("values", "indices"):
        assert got.tensors[name].dtype == want.tensors[name].dtype
        assert torch.equal(got.tensors[name].nan_to_num(), want.tensors[name].nan_to_num())
    assert got.bits == want.bits and got.elements == want.elements
    assert torch.equal(comp.decompress(got), sparse_decode(want))


# --------------------------------------------------------------------------- random-k


@pytest.mark.parametrize("d,k", [(1, 1), (10, 0), (10, 3), (10, 6), (10, 10), (1000, 499), (1000, 501), (D, D // 100)])
def test_distinct_sample_draws_k_distinct_increasing_indices(d, k):
    s = distinct_sample(d, k, generator_for((1, 2)))
    assert s.dtype == torch.int64 and s.numel() == k
    assert torch.all(s[1:] > s[:-1]) and (k == 0 or (int(s[0]) >= 0 and int(s[-1]) < d))
    assert torch.equal(s, distinct_sample(d, k, generator_for((1, 2))))
    if 0 < k < d:
        assert not torch.equal(s, distinct_sample(d, k, generator_for((1, 3))))


@pytest.mark.parametrize("d,k", [(12, 3), (12, 9)])
def test_distinct_sample_is_uniform(d, k):
    n = 6000
    counts = torch.zeros(d)
    pairs = torch.zeros(d, d)
    for seed in range(n):
        s = distinct_sample(d, k, generator_for((seed,)))
        counts[s] += 1
        pairs[s.unsqueeze(1), s] += 1
    p = k / d
    assert torch.all((counts / n - p).abs() < 5 * math.sqrt(p * (1 - p) / n))
    q = k * (k - 1) / (d * (d - 1))  # P(i and j both kept), i != j
    off = pairs[~torch.eye(d, dtype=torch.bool)] / n
    assert torch.all((off - q).abs() < 5 * math.sqrt(q * (1 - q) / n))


@pytest.mark.parametrize("d", [1000, D])
def test_randk_receiver_without_cache_decodes_the_senders_support(d):
    x = vector("normal", d=d, seed=2)
    sender, receiver = RandK(ratio=0.01), RandK(ratio=0.01)
    payload = sender.compress(x, CompressContext(seed=4, step=9, bucket=1, worker=0))
    other = sender.compress(x, CompressContext(seed=4, step=9, bucket=1, worker=1))
    out = receiver.decompress(payload)
    kept = out.nonzero().view(-1)
    assert kept.numel() == payload.elements == math.floor(0.01 * d)
    assert torch.equal(out[kept], x[kept]) and torch.equal(other.tensors["values"], payload.tensors["values"])
    assert torch.equal(out, sender.decompress(payload))


# --------------------------------------------------------------------------- decode


def test_scatter_decode_is_sparse_decode():
    x = vector("normal", seed=6)
    p = sparse_payload(x, torch.randperm(D, generator=torch.Generator().manual_seed(0))[:5000])
    assert torch.equal(scatter_decode(p), sparse_decode(p))


@pytest.mark.parametrize("n", [5, D + 3])
def test_rbgs_decode_places_the_block(n):
    x = torch.randn(n, generator=torch.Generator().manual_seed(1))
    comp = RBGS(ratio=4)
    for step in range(3):
        p = comp.compress(x, CompressContext(step=step))
        out = comp.decompress(p)
        s, k = p.meta["start"], p.elements
        kept = (torch.arange(k) + s) % n
        mask = torch.zeros(n, dtype=torch.bool)
        mask[kept] = True
        assert torch.equal(out[kept], x[kept]) and torch.all(out[~mask] == 0)
