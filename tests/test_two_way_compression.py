"""Two-way compression (``sketched_ams``'s Efficient-Adam and 1-bit Adam baselines): the server's
own compressor and error, its bits in ``bits_down`` read off the payload it sends. Two steps of
each against a hand computation (d = 6 in two tensors, n = 2)."""

from __future__ import annotations

import math

import torch

from compress_train.algorithms.communicator import SimCommunicator
from compress_train.algorithms.efficient_adam import EfficientAdam
from compress_train.algorithms.onebit_adam import OneBitAdam
from compress_train.compressors.onebit_rms import OneBitRMS
from compress_train.compressors.scope import ScopedCompressor
from compress_train.compressors.topk import TopK

T = torch.tensor
LAYERS = [4, 2]
G = [
    {0: T([0.5, -1.0, 0.25, 2.0, -0.5, 1.0]), 1: T([1.0, 0.5, -3.0, 0.0, 1.5, -1.0])},
    {0: T([-0.5, 2.0, 1.0, -1.0, 0.5, 0.25]), 1: T([0.25, -1.5, 0.5, 1.0, -2.0, 1.0])},
]


def topk():
    return ScopedCompressor(TopK(ratio=0.5), LAYERS, "layer")  # 2 of 4, 1 of 2


def top(x, k_per_layer=(2, 1)):
    """Layer-wise Top-k by hand."""
    out = torch.zeros_like(x)
    for (start, size), k in zip(((0, 4), (4, 2)), k_per_layer):
        part = x[start : start + size]
        idx = part.abs().argsort(descending=True)[:k]
        out[start + idx] = part[idx]
    return out


def rms_sign(x):  # noqa: D103
    out = []
    for part in x.split(LAYERS):
        s = float(part.norm() / math.sqrt(part.numel()))
        out.append(torch.where(part >= 0, torch.tensor(s), torch.tensor(-s)))
    return torch.cat(out)


def test_efficient_adam_two_steps_by_hand():
    lr, b1, b2, eps = 0.1, 0.9, 0.99, 0.1  # a large eps: the first step's u is not sign(g) (no Top-k ties)
    x = torch.zeros(6)
    algo = EfficientAdam(x, SimCommunicator(2), topk(), lr=lr, beta1=b1, beta2=b2, eps=eps, server_compressor=topk())
    m = {w: torch.zeros(6) for w in (0, 1)}
    v = {w: torch.zeros(6) for w in (0, 1)}
    e = {w: torch.zeros(6) for w in (0, 1)}
    E = torch.zeros(6)
    expected = torch.zeros(6)
    for step, grads in enumerate(G):
        report = algo.step({w: g.clone() for w, g in grads.items()}, step)
        q = {}
        for w, g in grads.items():
            m[w] = b1 * m[w] + (1 - b1) * g
            v[w] = b2 * v[w] + (1 - b2) * g * g
            u = lr * m[w] / (v[w].sqrt() + eps)
            q[w] = top(u + e[w])
            e[w] = u + e[w] - q[w]
        p = (q[0] + q[1]) / 2
        qs = top(p + E)
        E = p + E - qs
        expected = expected - qs
        torch.testing.assert_close(x, expected)
        torch.testing.assert_close(algo.server.error, E)
        for w in (0, 1):
            torch.testing.assert_close(algo.memories[w].error, e[w])
        assert report.bits_up == 64 * 3 and report.bits_down == 64 * 3  # the server's own Top-k payload
        assert report.extra["numbers_sent"] == 3 + 3
    assert E.abs().sum() > 0  # the server's error is exercised


def test_onebit_adam_warmup_then_compressed_steps_by_hand():
    lr, b1, b2, eps = 0.1, 0.9, 0.99, 1e-8
    x = torch.zeros(6)
    rms = lambda: ScopedCompressor(OneBitRMS(), LAYERS, "layer")  # noqa: E731
    algo = OneBitAdam(
        x, SimCommunicator(2), rms(), lr=lr, beta1=b1, beta2=b2, eps=eps, freeze_step=1, server_compressor=rms()
    )
    # step 0: warm-up, full Adam on the averaged gradient
    r0 = algo.step({w: g.clone() for w, g in G[0].items()}, 0)
    g = (G[0][0] + G[0][1]) / 2
    m = (1 - b1) * g
    v = (1 - b2) * g * g
    x_exp = -lr * m / (v.sqrt() + eps)
    torch.testing.assert_close(x, x_exp)
    assert r0.bits_up == r0.bits_down == 32 * 6
    # step 1: v frozen; local momenta compressed with worker errors, the average with the server's
    r1 = algo.step({w: g.clone() for w, g in G[1].items()}, 1)
    z = {w: b1 * m + (1 - b1) * G[1][w] for w in (0, 1)}  # e_i = 0 at the switch
    q = {w: rms_sign(z[w]) for w in (0, 1)}
    zb = (q[0] + q[1]) / 2
    mb = rms_sign(zb)
    x_exp = x_exp - lr * mb / (v.sqrt() + eps)
    torch.testing.assert_close(x, x_exp)
    torch.testing.assert_close(algo.server.error, zb - mb)
    for w in (0, 1):
        torch.testing.assert_close(algo.memories[w].error, z[w] - q[w])
        torch.testing.assert_close(algo.m[w], mb)  # overwritten: the momenta never drift
    torch.testing.assert_close(algo.v, v)  # frozen
    signs_and_scales = (8 + 32) + (8 + 32)  # per tensor: signs packed to a byte + one fp32 scale
    assert r1.bits_up == r1.bits_down == signs_and_scales


def test_onebit_adam_weight_decay_is_deepspeeds_added_to_the_update_never_compressed():
    """DeepSpeed's 1-bit Adam: update = m / (sqrt(v) + eps) + wd x, x -= lr update. Weight decay never
    enters m or v (a decay added to the gradient would change both and be compressed)."""
    lr, b1, b2, eps, wd = 0.1, 0.9, 0.99, 1e-8, 0.5
    x0 = torch.arange(1.0, 7.0)
    x = x0.clone()
    rms = lambda: ScopedCompressor(OneBitRMS(), LAYERS, "layer")  # noqa: E731
    algo = OneBitAdam(
        x, SimCommunicator(2), rms(), lr=lr, beta1=b1, beta2=b2, eps=eps, freeze_step=1, weight_decay=wd,
        server_compressor=rms(),
    )  # fmt: skip
    algo.step({w: g.clone() for w, g in G[0].items()}, 0)
    g = (G[0][0] + G[0][1]) / 2
    m, v = (1 - b1) * g, (1 - b2) * g * g
    x_exp = x0 - lr * (m / (v.sqrt() + eps) + wd * x0)
    torch.testing.assert_close(x, x_exp)
    torch.testing.assert_close(algo.v, v)  # the raw gradient's second moment: no decay in it
    torch.testing.assert_close(algo.m[0], m)
    x1 = x.clone()
    algo.step({w: g.clone() for w, g in G[1].items()}, 1)
    z = {w: b1 * m + (1 - b1) * G[1][w] for w in (0, 1)}  # the compressed momenta carry no decay either
    mb = rms_sign((rms_sign(z[0]) + rms_sign(z[1])) / 2)
    torch.testing.assert_close(x, x1 - lr * (mb / (v.sqrt() + eps) + wd * x1))
