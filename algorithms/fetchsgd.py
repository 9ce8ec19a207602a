"""FetchSGD (Rothchild et al., ICML 2020, arXiv 2007.07682; baselines.md B3), cited by ``sketched_ams``.
Code: github kiddyboots216/CommEfficient ``fed_aggregator.py`` (``_server_helper_sketched``).

Workers are stateless; momentum and error live at the server, in sketch space (the count sketch is the
same linear map at every step: its hashes depend on (seed, bucket) only):

    worker i:  send S(g_i)                                  (one allreduce of the tables; no second round)
    server:    S_u = rho S_u + avg_i S(g_i) ;  S_e = S_e + S_u        (``lr_in_error: true``: S_e += lr S_u)
               w = U(S_e, k) (top k of the estimate) ;  x -= lr w       (``lr_in_error: true``: x -= w)
               error update, ``fetch_error_update``:
                 ``zero_cells`` (default, the code): S_e = 0 at the cells (row j, bucket h_j(i)) of every
                 nonzero coordinate i of w (the code comments that subtracting diverged)
                 ``subtract`` (the paper): S_e -= S(w)
               ``fetch_mask_momentum: true`` (default): S_u = 0 at those cells too, as the code's
               ``_server_helper_sketched`` has done since its 2020-01-31 commit; false keeps S_u [U]

The server state is replicated on every process (the same averaged tables everywhere). One table per
bucket (``scope: model``: one); k = the compressor's ``k`` / ``ratio`` over the whole model.

Bits (ours): up = 32 r c; down (as implemented) = the summed table, 32 r c; a server's
64 k (w's values and indices) is ``bits_down_ps_model``. ``numbers_sent`` (001's convention):
|S| + k.
"""

from __future__ import annotations

import time

import torch

from compress_train.algorithms.sketching import SketchedAlgorithm, cells, check_choice, check_rho, top
from compress_train.compressors.count_sketch import accumulate

ERROR_UPDATES = ("zero_cells", "subtract")


class FetchSGD(SketchedAlgorithm):
    name = "fetchsgd"

    def __init__(
        self,
        params,
        comm,
        compressor,
        seed=0,
        lr=0.01,
        ef=None,
        rho: float = 0.9,
        lr_in_error: bool = False,
        fetch_error_update: str = "zero_cells",
        fetch_mask_momentum: bool = True,
    ):
        super().__init__(params, comm, compressor, seed, lr, ef)
        self.rho, self.lr_in_error = rho, lr_in_error
        self.fetch_error_update, self.fetch_mask_momentum = fetch_error_update, fetch_mask_momentum
        shape = (len(compressor.bucket_sizes), self.sketch.rows, self.sketch.columns)
        self.momentum_sketch = torch.zeros(shape, dtype=torch.float32, device=params.device)  # S_u
        self.error_sketch = torch.zeros(shape, dtype=torch.float32, device=params.device)  # S_e

    @classmethod
    def check(cls, cfg):
        return (
            super().check(cfg)
            + check_rho(cfg)
            + check_choice(cfg, "lr_in_error", (False, True), False)
            + check_choice(cfg, "fetch_error_update", ERROR_UPDATES, "zero_cells")
            + check_choice(cfg, "fetch_mask_momentum", (False, True), True)
        )

    def step(self, grads, step):
        first = self.first_round(grads, step)
        t0 = time.perf_counter()
        n = self.comm.world_size
        s_u, s_e = self.momentum_sketch, self.error_sketch
        for b, table in enumerate(first.tables):
            s_u[b].mul_(self.rho).add_(table / n)
            s_e[b].add_(s_u[b], alpha=self.lr if self.lr_in_error else 1.0)
        est = self.estimate(list(s_e.unbind(0)))
        support = top(est, self.k)
        values = est[support]
        self.apply(support, values, 1.0 if self.lr_in_error else self.lr)
        hit = support[values != 0]
        starts = self.bucket_starts()
        for b, size in enumerate(self.compressor.bucket_sizes):
            local = hit[(hit >= starts[b]) & (hit < starts[b] + size)] - starts[b]
            hashes = self.bucket_hashes(b)
            where = cells(hashes, local)  # (r, m)
            rows = torch.arange(hashes.rows, device=where.device).unsqueeze(1).expand_as(where)
            if self.fetch_error_update == "subtract":
                w_b = torch.zeros(size, dtype=torch.float32, device=est.device)
                w_b[local] = est[local + starts[b]]
                s_e[b].sub_(accumulate(w_b, hashes))
            else:
                s_e[b][rows, where] = 0
            if self.fetch_mask_momentum:
                s_u[b][rows, where] = 0
        traffic = first.traffic
        traffic.bits_down_ps_model += 64 * support.numel()  # a server's top-k update: fp32 values + int32 indices
        traffic.numbers_down += support.numel()
        traffic.time_compress_s += time.perf_counter() - t0
        return traffic.report()


IMPLEMENTATION = FetchSGD
