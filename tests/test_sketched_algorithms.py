"""The count-sketch methods (baselines.md A4, B2, B3): SketchedAMSGrad PA and GA, Sketched-SGD and FetchSGD,
two steps of each against a computation by hand on a tiny problem: d = 10, n = 2 workers, a 3 x 5 count
sketch (so coordinates collide), k = 2 and P = 2 (4 candidates: the second round is exercised).

The sketch is rebuilt here from the compressor's explicit hashes (``SketchHashes.buckets`` / ``signs``) with
the per-row formula: table[i, bucket_i(j)] += sign_i(j) x_j, estimate_j = lower median over the rows of
sign_i(j) table[i, bucket_i(j)]; everything after that is written out below in plain loops."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from compress_train.algorithms.communicator import SimCommunicator
from compress_train.algorithms.fetchsgd import FetchSGD
from compress_train.algorithms.sketched_ams_ga import SketchedAMSGradGA
from compress_train.algorithms.sketched_ams_pa import SketchedAMSGradPA
from compress_train.algorithms.sketched_sgd import SketchedSGD
from compress_train.compressors import count_sketch as cs
from compress_train.compressors.count_sketch import CountSketch
from compress_train.compressors.scope import ScopedCompressor
from compress_train.compressors.topk import TopK

T = torch.tensor
D, R, C, K, P = 10, 3, 5, 2, 2
# The run seed keys the hashes. With a 3 x 5 table for 10 coordinates collisions are common and coordinates
# sharing their median cell get EQUAL estimates; seed 56 gives no tie at any k-th largest selection below
# (``largest`` asserts it, so a change of data or hashes fails there, not as a silent order mismatch).
SEED = 56
G = [  # G[step][worker]
    [
        T([0.9, -0.2, 1.7, 0.05, -1.1, 0.3, 2.4, -0.6, 0.15, -0.8]),
        T([0.4, 0.6, -1.3, 0.2, -0.9, 1.2, 1.8, -0.1, 0.7, -1.6]),
    ],
    [
        T([-0.3, 1.4, 0.8, -2.2, 0.5, -0.7, 0.1, 1.1, -0.45, 0.25]),
        T([0.6, 0.9, -0.2, -1.5, 1.3, -0.35, 0.75, 0.4, -1.9, 0.55]),
    ],
]


def sketch(columns=C, scope="model", layers=(D,)):
    return ScopedCompressor(CountSketch(rows=R, columns=columns, ratio=None, k=K), list(layers), scope)


def hashes(size=D, bucket=0, columns=C):
    return cs.build_hashes(size, R, columns, (SEED, "count_sketch", bucket), "random")


class ByHand:
    """The count sketch written out, from one bucket's explicit hashes."""

    def __init__(self, h):
        self.b, self.s = h.buckets().tolist(), h.signs().tolist()
        self.c = h.columns

    def table(self, x):
        t = [[0.0] * self.c for _ in range(R)]
        for i in range(R):
            for j, xj in enumerate(x.tolist()):
                t[i][self.b[i][j]] += self.s[i][j] * xj
        return T(t)

    def estimate(self, table):
        out = []
        for j in range(len(self.b[0])):
            rows = sorted(self.s[i][j] * float(table[i, self.b[i][j]]) for i in range(R))
            out.append(rows[(R - 1) // 2])  # r = 3: the middle one
        return T(out)

    def cells(self, j):
        return [(i, self.b[i][j]) for i in range(R)]


def largest(x, k):
    """Indices of the k largest |x_j|, increasing (the data are chosen without a tie at the k-th)."""
    order = sorted(range(len(x)), key=lambda j: -abs(float(x[j])))
    if k < len(x):
        assert abs(abs(float(x[order[k - 1]])) - abs(float(x[order[k]]))) > 1e-4, "a tie at the k-th largest"
    return sorted(order[:k])


def two_rounds(vectors, hand, reduce="mean", divisor=None, factor=P):
    """Round 1 on the sketch, round 2 on the exact values; also the top k of the sketch alone."""
    n = len(vectors) if reduce == "mean" else 1
    table = sum(hand.table(v) for v in vectors) / n
    key = hand.estimate(table)
    if divisor is not None:
        key = key / divisor
    sketch_only = largest(key, K)
    if factor == 0:
        return sketch_only, key[sketch_only], None, sketch_only
    cand = largest(key, factor * K)
    exact = sum(v[cand] for v in vectors) / n
    if divisor is not None:
        exact = exact / divisor[cand]
    chosen = largest(exact, K)
    return [cand[j] for j in chosen], exact[chosen], cand, sketch_only


def close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


# -- SketchedAMSGrad, parameter averaging ----------------------------------------------------


def test_sketched_ams_pa_two_steps_by_hand():
    b1, b2, eps, lrs = 0.9, 0.5, 0.01, (0.1, 0.05)  # lr halves: r_2 = 2 rescales the residual
    x = torch.zeros(D)
    comm = SimCommunicator(2)
    algo = SketchedAMSGradPA(x, comm, sketch(), seed=SEED, lr=lrs[0], beta1=b1, beta2=b2, eps=eps, candidates_factor=P)
    hand = ByHand(hashes())
    m = [torch.zeros(D) for _ in range(2)]
    v = [torch.full((D,), eps) for _ in range(2)]
    vhat = [torch.full((D,), eps) for _ in range(2)]
    e = [torch.zeros(D) for _ in range(2)]
    expected, round_two_mattered = torch.zeros(D), False
    for step, lr in enumerate(lrs):
        algo.lr = lr
        r = 1.0 if step == 0 else lrs[step - 1] / lr
        report = algo.step({w: G[step][w].clone() for w in range(2)}, step)
        a = []
        for w in range(2):
            g = G[step][w]
            m[w] = b1 * m[w] + (1 - b1) * g
            v[w] = b2 * v[w] + (1 - b2) * g * g
            vhat[w] = torch.maximum(vhat[w], v[w])
            a.append(m[w] / vhat[w].sqrt() + r * e[w])  # no eps in the denominator
        support, delta, cand, sketch_only = two_rounds(a, hand)
        round_two_mattered |= support != sketch_only
        assert set(support) < set(cand)
        expected[support] -= lr * delta
        for w in range(2):
            e[w] = a[w].clone()
            e[w][support] = 0
        close(x, expected)
        for w in range(2):
            close(algo.e[w], e[w])
            close(algo.vhat[w], vhat[w])
            assert algo.e[w][support].abs().sum() == 0  # the residual is reset on the update
        assert report.bits_up == 32 * R * C + 32 * P * K
        assert report.bits_down == 32 * R * C + 32 * P * K  # the two allreduces' results, as received
        assert report.extra["bits_down_ps_model"] == 32 * P * K + 64 * K
        assert report.elements_up == R * C + P * K
        assert report.extra["numbers_sent"] == R * C + P * K + K
        assert comm.take_collectives() == [("allreduce", 4 * R * C), ("allreduce", 4 * P * K)]
    assert round_two_mattered  # the exact values changed the choice the sketch alone would make
    assert algo.prev_lr == lrs[1]


def test_pa_constant_lr_and_layer_scope():
    """Two buckets (scope: layer): one 3 x 6 table each, own hashes, one global top-k; r_t = 1."""
    layers = (4, 6)
    x = torch.zeros(D)
    algo = SketchedAMSGradPA(
        x,
        SimCommunicator(2),
        sketch(6, "layer", layers),
        seed=SEED,
        lr=0.1,
        beta1=0.5,
        beta2=0.5,
        eps=0.01,
        candidates_factor=P,
    )
    hands = [ByHand(hashes(4, 0, 6)), ByHand(hashes(6, 1, 6))]
    m, v = [torch.zeros(D) for _ in range(2)], [torch.full((D,), 0.01) for _ in range(2)]
    vhat = [torch.full((D,), 0.01) for _ in range(2)]
    e = [torch.zeros(D) for _ in range(2)]
    expected = torch.zeros(D)
    for step in range(2):
        report = algo.step({w: G[step][w].clone() for w in range(2)}, step)
        for w in range(2):
            m[w] = 0.5 * m[w] + 0.5 * G[step][w]
            v[w] = 0.5 * v[w] + 0.5 * G[step][w] ** 2
            vhat[w] = torch.maximum(vhat[w], v[w])
        a = [m[w] / vhat[w].sqrt() + e[w] for w in range(2)]
        est = torch.cat(
            [h.estimate(sum(h.table(ai[s : s + n]) for ai in a) / 2) for h, s, n in zip(hands, (0, 4), layers)]
        )
        cand = largest(est, P * K)
        avg = (a[0] + a[1])[cand] / 2
        support = [cand[j] for j in largest(avg, K)]
        expected[support] -= 0.1 * avg[largest(avg, K)]
        for w in range(2):
            e[w] = a[w].clone()
            e[w][support] = 0
        close(x, expected)
        assert report.bits_up == 2 * 32 * R * 6 + 32 * P * K
        assert report.extra["numbers_sent"] == 2 * R * 6 + P * K + K


# -- SketchedAMSGrad, gradient averaging -----------------------------------------------------


@pytest.mark.parametrize("residual", ["unscaled", "literal"])
def test_sketched_ams_ga_two_steps_by_hand(residual):
    b1, b2, eps, lrs = 0.9, 0.5, 0.01, (0.1, 0.2)  # lr doubles: r_2 = 1/2
    x = torch.zeros(D)
    comm = SimCommunicator(2)
    algo = SketchedAMSGradGA(
        x, comm, sketch(), seed=SEED, lr=lrs[0], beta1=b1, beta2=b2, eps=eps, candidates_factor=P, ga_residual=residual
    )
    hand = ByHand(hashes())
    m = [torch.zeros(D) for _ in range(2)]
    e = [torch.zeros(D) for _ in range(2)]
    v, vhat = torch.full((D,), eps), torch.full((D,), eps)
    prev, supports, expected = None, [], torch.zeros(D)
    for step, lr in enumerate(lrs):
        algo.lr = lr
        r = 1.0 if step == 0 else lrs[step - 1] / lr
        report = algo.step({w: G[step][w].clone() for w in range(2)}, step)
        a = []
        for w in range(2):
            m[w] = b1 * m[w] + (1 - b1) * G[step][w]
            a.append(m[w] + r * e[w])
        # server: h = avg_i g_i on I_{t-1} (the raw gradient, the previous support); decay only elsewhere
        v = b2 * v
        if prev is not None:
            h = (G[step][0][prev] + G[step][1][prev]) / 2
            v[prev] += (1 - b2) * h * h
        vhat = torch.maximum(vhat, v)
        support, delta, _, _ = two_rounds(a, hand, divisor=vhat.sqrt())
        expected[support] -= lr * delta
        for w in range(2):
            e[w] = a[w].clone()
            e[w][support] = 0 if residual == "unscaled" else a[w][support] * (1 - 1 / vhat[support].sqrt())
        close(x, expected)
        close(algo.v, v)
        close(algo.vhat, vhat)
        for w in range(2):
            close(algo.e[w], e[w])
        assert algo.last_support.tolist() == support
        h_bits = 0 if prev is None else 32 * K
        assert report.bits_up == 32 * R * C + 32 * P * K + h_bits
        assert report.bits_down == report.bits_up  # allreduces: each worker receives sums of its message's size
        assert report.extra["bits_down_ps_model"] == 32 * P * K + 64 * K
        assert report.extra["numbers_sent"] == R * C + P * K + K + (0 if prev is None else K)
        assert comm.take_collectives() == [("allreduce", 4 * R * C + h_bits // 8), ("allreduce", 4 * P * K)]
        if step == 0:
            assert torch.equal(algo.v, torch.full((D,), b2 * eps))  # no h at t = 1 (I_0 = {})
        prev = support
        supports.append(support)
    # v lags a step: after step 2 it is refreshed only on I_1 (with step 2's gradients), decayed elsewhere
    off = [j for j in range(D) if j not in supports[0]]
    assert torch.equal(algo.v[off], torch.full((len(off),), b2 * eps) * b2)
    assert (algo.v[supports[0]] > b2 * b2 * eps).all()
    assert supports[1] != supports[0]  # I_2, chosen with the refreshed vhat


# -- Sketched-SGD ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "factor, reduce, wd, lr_in_error", [(P, "mean", 0.0, False), (0, "mean", 0.0, False), (P, "sum", 0.1, True)]
)
def test_sketched_sgd_two_steps_by_hand(factor, reduce, wd, lr_in_error):
    rho, lr = 0.9, 0.1
    x = torch.ones(D)
    algo = SketchedSGD(
        x,
        SimCommunicator(2),
        sketch(),
        seed=SEED,
        lr=lr,
        rho=rho,
        weight_decay=wd,
        candidates_factor=factor,
        reduce=reduce,
        lr_in_error=lr_in_error,
    )
    hand = ByHand(hashes())
    u = [torch.zeros(D) for _ in range(2)]
    v = [torch.zeros(D) for _ in range(2)]
    expected = torch.ones(D)
    for step in range(2):
        report = algo.step({w: G[step][w].clone() for w in range(2)}, step)
        for w in range(2):
            g = G[step][w] + wd * expected
            u[w] = rho * u[w] + (lr * g if lr_in_error else g)
            v[w] = v[w] + u[w]
        support, values, cand, _ = two_rounds(v, hand, reduce=reduce, factor=factor)
        expected[support] -= values if lr_in_error else lr * values
        for w in range(2):
            u[w][support] = 0  # momentum stopped and error reset on supp(w), on every worker
            v[w][support] = 0
        close(x, expected)
        for w in range(2):
            close(algo.u[w], u[w])
            close(algo.v[w], v[w])
            assert algo.u[w][support].abs().sum() == 0 and algo.v[w][support].abs().sum() == 0
        assert report.bits_up == 32 * R * C + 32 * factor * K
        assert report.bits_down == report.bits_up
        assert report.extra["bits_down_ps_model"] == 32 * factor * K + 64 * K
        assert report.extra["numbers_sent"] == R * C + factor * K + K
        assert (cand is None) == (factor == 0)  # P = 0: w = U(S, k), the sketch's own estimates


# -- FetchSGD ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "update, mask, lr_in_error",
    [("zero_cells", False, False), ("subtract", False, False), ("zero_cells", True, True), ("subtract", True, False)],
)
def test_fetchsgd_two_steps_by_hand(update, mask, lr_in_error):
    rho, lr = 0.9, 0.1
    x = torch.zeros(D)
    comm = SimCommunicator(2)
    algo = FetchSGD(
        x,
        comm,
        sketch(),
        seed=SEED,
        lr=lr,
        rho=rho,
        lr_in_error=lr_in_error,
        fetch_error_update=update,
        fetch_mask_momentum=mask,
    )
    hand = ByHand(hashes())
    s_u, s_e = torch.zeros(R, C), torch.zeros(R, C)
    expected = torch.zeros(D)
    for step in range(2):
        report = algo.step({w: G[step][w].clone() for w in range(2)}, step)
        s_u = rho * s_u + (hand.table(G[step][0]) + hand.table(G[step][1])) / 2
        s_e = s_e + (lr * s_u if lr_in_error else s_u)
        est = hand.estimate(s_e)
        support = largest(est, K)
        w_vec = torch.zeros(D)
        w_vec[support] = est[support]
        expected -= w_vec if lr_in_error else lr * w_vec
        hit = [c for j in support for c in hand.cells(j)]
        if update == "subtract":
            s_e = s_e - hand.table(w_vec)
        else:
            for i, b in hit:
                s_e[i, b] = 0
        if mask:
            for i, b in hit:
                s_u[i, b] = 0
        close(x, expected)
        close(algo.error_sketch[0], s_e)
        close(algo.momentum_sketch[0], s_u)
        assert report.bits_up == 32 * R * C and report.bits_down == 32 * R * C
        assert report.extra["bits_down_ps_model"] == 64 * K
        assert report.extra["numbers_sent"] == R * C + K
        assert comm.take_collectives() == [("allreduce", 4 * R * C)]  # no second round
    assert s_e.abs().sum() > 0 and s_u.abs().sum() > 0  # the state carried into step 2 is not trivial


# -- configuration -----------------------------------------------------------------------------


def test_the_sketch_methods_need_the_count_sketch():
    for cls in (SketchedAMSGradPA, SketchedAMSGradGA, SketchedSGD, FetchSGD):
        assert cls.needs.compressor_name == "count_sketch"
        with pytest.raises(ValueError, match="compressor=count_sketch"):
            cls(torch.zeros(4), SimCommunicator(1), ScopedCompressor(TopK(k=1), [4], "model"))


def test_checks_name_the_keys_and_their_values():
    pa = {"lr": 0.1, "beta1": 0.9, "beta2": 0.999, "eps": 1e-4, "candidates_factor": 8, "ef": "none"}
    assert SketchedAMSGradPA.check(pa) == []
    assert any("`candidates_factor`" in e for e in SketchedAMSGradPA.check({**pa, "candidates_factor": 0}))
    assert any("`eps`" in e for e in SketchedAMSGradPA.check({**pa, "eps": 0}))
    assert any("`ef`" in e for e in SketchedAMSGradPA.check({**pa, "ef": "classic"}))
    ga = {**pa, "ga_residual": "unscaled"}
    assert SketchedAMSGradGA.check(ga) == []
    assert any("`ga_residual`" in e for e in SketchedAMSGradGA.check({**ga, "ga_residual": "scaled"}))
    sgd = {"lr": 0.1, "rho": 0.9, "weight_decay": 0.0, "candidates_factor": 0, "reduce": "sum", "lr_in_error": True}
    assert SketchedSGD.check(sgd) == []
    assert any("`rho`" in e for e in SketchedSGD.check({**sgd, "rho": 1.0}))
    assert any("`reduce`" in e for e in SketchedSGD.check({**sgd, "reduce": "max"}))
    assert any("`lr_in_error`" in e for e in SketchedSGD.check({**sgd, "lr_in_error": 1}))
    fetch = {"lr": 0.1, "rho": 0.0, "lr_in_error": False, "fetch_error_update": "subtract", "fetch_mask_momentum": True}
    assert FetchSGD.check(fetch) == []
    assert any("`fetch_error_update`" in e for e in FetchSGD.check({**fetch, "fetch_error_update": "zero"}))
    assert any("`fetch_mask_momentum`" in e for e in FetchSGD.check({**fetch, "fetch_mask_momentum": "yes"}))


def test_fetchsgd_masks_the_momentum_cells_by_default_as_the_public_code():
    """CommEfficient's server zeroes S_u at the applied cells (since its 2020-01-31 commit): the default,
    in the class and in conf/algo/fetchsgd.yaml; after a step those cells of S_u are zero."""
    import inspect

    import yaml

    from compress_train.conf import __file__ as conf_init

    assert inspect.signature(FetchSGD).parameters["fetch_mask_momentum"].default is True
    yaml_cfg = yaml.safe_load((Path(conf_init).parent / "algo" / "fetchsgd.yaml").read_text())
    assert yaml_cfg["fetch_mask_momentum"] is True
    algo = FetchSGD(torch.zeros(D), SimCommunicator(2), sketch(), seed=SEED, lr=0.1, rho=0.9)
    algo.step({w: G[0][w].clone() for w in range(2)}, 0)
    hand = ByHand(hashes())
    est = hand.estimate((hand.table(G[0][0]) + hand.table(G[0][1])) / 2)
    for j in largest(est, K):
        for i, b in hand.cells(j):
            assert algo.momentum_sketch[0][i, b] == 0


def test_sketched_sgd_default_applies_lr_after_aggregation_as_the_public_code_runs():
    """dhroth/sketchedsgd's current code applies lr after aggregation (its lr-inside-momentum line is
    commented out): the default, and the docs say which form is which."""
    import inspect

    from compress_train.algorithms import sketched_sgd

    assert inspect.signature(sketched_sgd.SketchedSGD).parameters["lr_in_error"].default is False
    assert "commented out" in sketched_sgd.__doc__
