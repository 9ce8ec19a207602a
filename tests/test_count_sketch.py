"""Count sketch (compressors/count_sketch.py, baselines.md B1): linearity, the allreduce of tables and
one decode of the sum, shared hashes, the lower median, the count-sketch recovery and l2 bounds, the
bit count, the unsketch's top-k and the parameter checks. Both hash families (``random``, ``block``)."""

from __future__ import annotations

import math

import pytest
import torch

from compress_train.algorithms.communicator import SimCommunicator
from compress_train.compressors import count_sketch as cs
from compress_train.compressors.base import CompressContext
from compress_train.compressors.count_sketch import CountSketch
from compress_train.compressors.scope import SCOPES, ScopedCompressor

HASHINGS = cs.HASHINGS

pytestmark = pytest.mark.usefixtures("one_thread")  # the suite shares two cores


def integers(d: int, seed: int, high: int = 50) -> torch.Tensor:
    """Small integers in fp32: every sum the sketch forms is exact, so equalities hold with tolerance 0."""
    return torch.randint(-high, high + 1, (d,), generator=torch.Generator().manual_seed(seed)).float()


def binomial_tail(r: int, p: float) -> float:
    """P(at least ceil(r/2) of r independent rows fail), each with probability p: the (lower)
    median of r row estimates can only be off if that many rows are."""
    m0 = math.ceil(r / 2)
    return sum(math.comb(r, m) * p**m * (1 - p) ** (r - m) for m in range(m0, r + 1))


def allowed_failures(expected: float) -> int:
    """Failures allowed when theory bounds their expected number by ``expected``: 3 standard
    deviations of a Poisson count above it, plus one."""
    return math.floor(expected + 3 * math.sqrt(expected) + 1)


# --------------------------------------------------------------------------- linearity, allreduce


@pytest.mark.parametrize("hashing", HASHINGS)
def test_sketch_is_exactly_linear(hashing):
    c = CountSketch(rows=5, columns=200, hashing=hashing)
    ctx = CompressContext(seed=1, step=0, bucket=0)
    a, b = integers(3000, 0), integers(3000, 1)
    sa, sb, sab = (c.compress(v, ctx).tensors["table"] for v in (a, b, a + b))
    assert torch.equal(sa + sb, sab)
    assert torch.equal(c.compress(3 * a, ctx).tensors["table"], 3 * sa)
    assert torch.equal(c.compress(torch.zeros(3000), ctx).tensors["table"], torch.zeros(5, 200))


@pytest.mark.parametrize("hashing", HASHINGS)
def test_table_and_estimate_match_the_explicit_hashes(hashing):
    d, r, c = 2500, 5, 300  # block: 8 full blocks and a partial one
    hashes = cs.build_hashes(d, r, c, (0, "count_sketch", 0), hashing)
    buckets, signs = hashes.buckets(), hashes.signs()
    assert buckets.shape == (r, d) and int(buckets.min()) >= 0 and int(buckets.max()) < c
    assert set(signs.unique().tolist()) == {-1.0, 1.0}
    x = torch.randn(d, generator=torch.Generator().manual_seed(3))
    reference = torch.zeros(r, c, dtype=torch.float64)
    for i in range(r):  # the definition, row by row in float64
        reference[i].index_add_(0, buckets[i], signs[i].double() * x.double())
    table = cs.accumulate(x, hashes)
    assert table.dtype == torch.float32 and table.shape == (r, c)
    assert float((table.double() - reference).abs().max()) <= 1e-5
    rows = signs * table.gather(1, buckets)
    assert torch.equal(cs.row_estimates(table, hashes), rows)
    assert torch.equal(cs.estimate(table, hashes), torch.median(rows, dim=0).values)


@pytest.mark.parametrize("hashing", HASHINGS)
@pytest.mark.parametrize("scope", SCOPES)
def test_allreduce_sums_tables_and_decodes_once(hashing, scope):
    """decompress(sum of the workers' payloads) == unsketch of the summed table == the decode of the
    sketch of the summed vector; the allreduce moves 4 r c bytes per sketch."""
    layers, n, r, c = [7, 300, 64, 1, 1000, 4096], 4, 5, 64
    comp = CountSketch(rows=r, columns=c, ratio=0.05, hashing=hashing)
    sc = ScopedCompressor(comp, layers, scope)
    xs = [integers(sum(layers), 10 + w) for w in range(n)]
    messages = [sc.compress(x, 7, 3, w) for w, x in enumerate(xs)]  # the worker differs, nothing else
    comm = SimCommunicator(n)
    summed = comm.allreduce_sum(messages)
    nbytes = 4 * r * c * len(sc.bucket_sizes)
    assert comm.wire_bytes == nbytes and comm.take_collectives() == [("allreduce", nbytes)]
    direct = sc.compress(sum(xs), 7, 3, 0)
    for p, q, ms in zip(summed.payloads, direct.payloads, zip(*(m.payloads for m in messages))):
        assert torch.equal(p.tensors["table"], sum(m.tensors["table"] for m in ms))
        assert torch.equal(p.tensors["table"], q.tensors["table"])
        hashes = comp.hashes(p.numel, p.meta["key"])
        expected = cs.unsketch(p.tensors["table"], hashes, comp.k_for(p.numel))
        assert torch.equal(comp.decompress(p), expected)
        assert torch.equal(comp.unsketch(p, comp.k_for(p.numel)), expected)
    assert torch.equal(sc.decompress(summed), sc.decompress(direct))


def test_hashes_shared_by_workers_and_steps_but_not_by_buckets_or_seeds():
    comp = CountSketch(rows=5, columns=100)
    x = torch.randn(2000, generator=torch.Generator().manual_seed(0))
    base = comp.compress(x, CompressContext(seed=3, step=0, bucket=1, worker=0))
    other = comp.compress(x, CompressContext(seed=3, step=9, bucket=1, worker=5))
    assert base.meta == other.meta == {"key": (3, "count_sketch", 1)}
    assert torch.equal(base.tensors["table"], other.tensors["table"])
    assert comp.hashes(2000, base.meta["key"]) is comp.hashes(2000, other.meta["key"])  # built once, cached
    reference = comp.hashes(2000, base.meta["key"]).buckets()
    for ctx in (CompressContext(seed=3, bucket=2), CompressContext(seed=4, bucket=1)):
        p = comp.compress(x, ctx)
        assert not torch.equal(p.tensors["table"], base.tensors["table"])
        assert (comp.hashes(2000, p.meta["key"]).buckets() != reference).float().mean() > 0.9


def test_hash_cache_evicts_least_recent_first(monkeypatch):
    cs.clear_cache()
    first = cs.sketch_hashes(1000, 3, 50, (0, "t", 0))
    one = first.nbytes
    monkeypatch.setattr(cs, "CACHE_BYTES", 2 * one)
    second = cs.sketch_hashes(1000, 3, 50, (0, "t", 1))
    assert cs.sketch_hashes(1000, 3, 50, (0, "t", 0)) is first  # now the most recent
    cs.sketch_hashes(1000, 3, 50, (0, "t", 2))  # evicts key 1, not key 0
    assert cs.sketch_hashes(1000, 3, 50, (0, "t", 0)) is first
    assert cs.sketch_hashes(1000, 3, 50, (0, "t", 1)) is not second
    cs.clear_cache()


def test_block_hashing_shifts_whole_blocks():
    d, r, c = 1050, 4, 100
    h = cs.build_hashes(d, r, c, (5, "count_sketch", 0), "block")
    buckets, signs = h.buckets(), h.signs()
    for b in range(-(-d // c)):
        part = slice(b * c, min(d, (b + 1) * c))
        n = part.stop - part.start
        for i in range(r):
            s = int(h.shift[i, b])
            assert buckets[i, part].tolist() == [(o + s) % c for o in range(n)]  # distinct within a block
            assert torch.equal(signs[i, part], h.block_sign[i, b] * h.pattern[i, :n])


# --------------------------------------------------------------------------- the median


@pytest.mark.parametrize("r", range(1, 13))
def test_lower_median_is_torch_median(r):
    g = torch.Generator().manual_seed(r)
    for values in (
        torch.randint(-3, 4, (r, 4000), generator=g).float(),  # many ties
        torch.randn(r, 4000, generator=g),
    ):
        expected = torch.median(values, dim=0).values
        assert torch.equal(cs.lower_median(values), expected)
        out = torch.empty(4000)
        cs.lower_median(values, out=out)
        assert torch.equal(out, expected)


def test_lower_median_takes_the_lower_middle_for_even_rows():
    values = torch.tensor([[4.0, -1.0], [1.0, -2.0], [3.0, -3.0], [2.0, -4.0]])
    assert cs.lower_median(values).tolist() == [2.0, -3.0]  # not 2.5 / -2.5 (mean) nor 3 / -2 (upper)
    assert torch.median(values, dim=0).values.tolist() == [2.0, -3.0]


@pytest.mark.parametrize("hashing", HASHINGS)
def test_estimate_with_even_rows_is_the_lower_median(hashing):
    comp = CountSketch(rows=4, columns=8, ratio=None, k=1, hashing=hashing)
    payload = comp.compress(torch.zeros(1), CompressContext(seed=2))
    hashes = comp.hashes(1, payload.meta["key"])
    table = payload.tensors["table"]
    for i, v in enumerate([4.0, 1.0, 3.0, 2.0]):  # row i's estimate of x_0 becomes v
        table[i, hashes.buckets()[i, 0]] = hashes.signs()[i, 0] * v
    assert comp.estimate(payload).tolist() == [2.0]
    assert comp.decompress(payload).tolist() == [2.0]


# --------------------------------------------------------------------------- recovery bounds


@pytest.mark.parametrize("hashing", HASHINGS)
def test_heavy_hitters_recovered_as_the_count_sketch_guarantees(hashing):
    """Count sketch (Charikar, Chen, Farach-Colton 2002): in one row, coordinate j's estimate is off by
    more than eps ||x_tail||_2 only if j shares its bucket with one of the k heavy coordinates
    (probability <= k/c) or the tail's noise in its bucket exceeds eps ||x_tail|| (Chebyshev: its
    variance is <= ||x_tail||^2 / c, so probability <= 1/(c eps^2)). The median of r independent rows
    fails only if ceil(r/2) rows do (delta = binomial tail); a union bound over the d coordinates with
    eps = (M - max|tail|) / (2 ||x_tail||) (then every heavy estimate beats every tail estimate)
    bounds the probability that the k heavy coordinates are not exactly the top k by d * delta."""
    d, k, r, c, M, trials = 20_000, 8, 5, 2000, 200.0, 40
    comp = CountSketch(rows=r, columns=c, ratio=None, k=k, hashing=hashing)
    expected_failures, failures = 0.0, 0
    for t in range(trials):
        g = torch.Generator().manual_seed(100 + t)
        x = torch.randn(d, generator=g)
        heavy = torch.randperm(d, generator=g)[:k]
        x[heavy] = M * (1 - 2 * torch.randint(2, (k,), generator=g)).float()
        tail = x.clone()
        tail[heavy] = 0
        tail_norm, tail_max = float(tail.norm()), float(tail.abs().max())
        eps = (M - tail_max) / (2 * tail_norm) * (1 - 1e-9)
        expected_failures += min(1.0, d * binomial_tail(r, k / c + 1 / (c * eps**2)))
        payload = comp.compress(x, CompressContext(seed=t))
        found = comp.heavy_hitters(payload, k)
        decoded = comp.decompress(payload)
        assert set(decoded.nonzero().view(-1).tolist()) <= set(found.tolist())
        if set(found.tolist()) != set(heavy.tolist()):
            failures += 1
            continue
        assert (decoded[heavy] - x[heavy]).abs().max() <= eps * tail_norm
    assert expected_failures < 0.05 * trials  # the bound has teeth: a broken sketch fails nearly always
    assert failures <= allowed_failures(expected_failures), (failures, expected_failures)


@pytest.mark.parametrize("hashing", HASHINGS)
@pytest.mark.parametrize("kind", ["gauss", "periodic"])
def test_point_queries_within_the_count_sketch_bound(hashing, kind):
    """Per coordinate: P(|est_j - x_j| > eps ||x||_2) <= delta = P(Bin(r, 1/(c eps^2)) >= ceil(r/2)).
    And one row's squared error has mean sum_{j' colliding possible} x_j'^2 / c exactly (pairwise
    collision probability 1/c, pairwise independent signs): (||x||^2 - x_j^2) / c for random hashes,
    (||x||^2 - ||x_block(j)||^2) / c for block hashes (a block never collides with itself)."""
    d, r, c, eps, trials = 5000, 5, 500, 0.1, 20
    j = torch.arange(d)
    if kind == "gauss":
        x = torch.randn(d, generator=torch.Generator().manual_seed(0))
    else:  # period c: the layout the block hashes could be worst at
        x = torch.cos(2 * math.pi * j / c) * (1 + j % 7)
    norm2 = float(x.double().pow(2).sum())
    if hashing == "random":
        own = x.double().pow(2)
    else:
        own = x.double().pow(2).view(-1, c).sum(1).repeat_interleave(c)
    mean_sq_expected = float(((norm2 - own) / c).mean())
    delta = binomial_tail(r, 1 / (c * eps**2))
    bad, sq = 0, 0.0
    for t in range(trials):
        hashes = cs.build_hashes(d, r, c, (t, "count_sketch", 0), hashing)
        table = cs.accumulate(x, hashes)
        bad += int(((cs.estimate(table, hashes) - x).abs() > eps * math.sqrt(norm2)).sum())
        sq += float((cs.row_estimates(table, hashes).double() - x.double()).pow(2).mean())
    assert bad / (trials * d) <= delta
    assert sq / trials == pytest.approx(mean_sq_expected, rel=0.05)


@pytest.mark.parametrize("hashing", HASHINGS)
def test_l2_estimate_within_its_bound(hashing):
    """AMS: one row's sum of squares Y has E[Y] = ||x||^2 and Var[Y] <= 2 ||x||^4 / c (4-wise
    independent signs, pairwise buckets: the random hashes), so P(|Y - ||x||^2| > eps ||x||^2) <=
    2 / (c eps^2); the median of r rows fails with at most the binomial tail, and then
    sqrt(Y) is within (1 +- eps) ||x||. Block hashes lack 4-wise signs: for them this is an empirical
    check on Gaussian vectors, not a theorem."""
    d, r, c, eps, trials = 5000, 5, 500, 0.2, 100
    delta = binomial_tail(r, 2 / (c * eps**2))
    failures = 0
    for t in range(trials):
        x = torch.randn(d, generator=torch.Generator().manual_seed(1000 + t)) * 10 ** (t % 3)
        hashes = cs.build_hashes(d, r, c, (t, "count_sketch", 0), hashing)
        estimate = float(cs.l2_estimate(cs.accumulate(x, hashes)))
        failures += not (1 - eps) * float(x.norm()) <= estimate <= (1 + eps) * float(x.norm())
    assert failures <= allowed_failures(trials * delta), (failures, trials * delta)


def test_l2_estimate_uses_the_lower_median_of_row_sums():
    table = torch.tensor([[3.0, 0.0], [0.0, 1.0], [2.0, 0.0], [0.0, 4.0]])  # row sums 9, 1, 4, 16
    assert float(cs.l2_estimate(table)) == 2.0  # sqrt(4): lower middle of (1, 4, 9, 16)


# --------------------------------------------------------------------------- payload, decode, checks


@pytest.mark.parametrize("r,c", [(5, 10_000), (3, 7), (10, 1000)])
def test_bits_are_32_r_c(r, c):
    comp = CountSketch(rows=r, columns=c)
    p = comp.compress(torch.randn(1000), CompressContext(seed=1, bucket=4))
    assert list(p.tensors) == ["table"] and p.tensors["table"].dtype == torch.float32
    assert p.tensors["table"].shape == (r, c)
    assert p.bits == 32 * r * c and p.elements == r * c and p.numel == 1000
    assert p.meta == {"key": (1, "count_sketch", 4)}
    sc = ScopedCompressor(comp, [10, 20, 970], "layer")
    assert sc.compress(torch.randn(1000), 0, 0, 0).bits == 3 * 32 * r * c


@pytest.mark.parametrize("hashing", HASHINGS)
@pytest.mark.parametrize("ratio,k", [(0.01, None), (None, 1), (None, 37), (None, 5000)])
def test_decode_is_the_top_k_of_the_estimates(hashing, ratio, k):
    d = 3000
    comp = CountSketch(rows=5, columns=400, ratio=ratio, k=k, hashing=hashing)
    p = comp.compress(torch.randn(d, generator=torch.Generator().manual_seed(2)), CompressContext(seed=9))
    est, out = comp.estimate(p), comp.decompress(p)
    kk = min(d, k) if k is not None else max(1, math.floor(ratio * d))
    kept = out != 0
    assert int(kept.sum()) == kk and torch.equal(out[kept], est[kept])
    if kk < d:
        assert est[kept].abs().min() >= est[~kept].abs().max()
    hh = comp.heavy_hitters(p, kk)
    assert set(hh.tolist()) == set(kept.nonzero().view(-1).tolist())
    assert torch.all(est[hh].abs()[:-1] >= est[hh].abs()[1:])  # decreasing |estimate|


@pytest.mark.parametrize("kind", ["gauss", "zeros", "strided", "ties"])
def test_topk_magnitude_is_torch_topk(kind):
    d, k = 1_000_000, 3000  # above 4 * SELECT_SAMPLE: the sampled threshold path
    g = torch.Generator().manual_seed(4)
    x = torch.randn(d, generator=g)
    if kind == "zeros":  # threshold 0: every entry a candidate
        x[torch.rand(d, generator=g) < 0.999] = 0
    elif kind == "strided":  # the strided sample sees only small entries: the fallback
        x = torch.where(torch.arange(d) % (d // cs.SELECT_SAMPLE) == 0, x * 1e-3, x)
    elif kind == "ties":
        x = torch.randint(-20, 21, (d,), generator=g).float()
    got = cs.topk_magnitude(x, k)
    ref = torch.topk(x.abs(), k, sorted=False).indices
    assert got.numel() == k and got.unique().numel() == k
    assert torch.equal(x[got].abs().sort().values, x[ref].abs().sort().values)
    if kind in ("gauss", "strided"):
        assert set(got.tolist()) == set(ref.tolist())


@pytest.mark.parametrize(
    "params,key",
    [
        ({"rows": 0}, "`rows`"),
        ({"rows": 2.5}, "`rows`"),
        ({"rows": True}, "`rows`"),
        ({"columns": 0}, "`columns`"),
        ({"columns": "100"}, "`columns`"),
        ({"hashing": "csvec"}, "`hashing`"),
        ({"ratio": 0.1, "k": 5}, "`k`"),
        ({"ratio": None, "k": None}, "`ratio`"),
        ({"ratio": None, "k": 0}, "`k`"),
        ({"ratio": 1.5}, "`ratio`"),
    ],
)
def test_check_names_the_key(params, key):
    errors = CountSketch(**params).check()
    assert len(errors) == 1 and key in errors[0], errors


def test_defaults_and_params():
    comp = CountSketch()
    assert comp.check() == []
    assert comp.params() == {"rows": 5, "columns": 10_000, "ratio": 0.002, "hashing": "random"}
    assert CountSketch(ratio=None, k=50_000, rows=10, columns=100_000).params()["k"] == 50_000
    assert comp.linear and comp.shared_randomness and comp.allreduce and not comp.unbiased
