"""QGD: the "trivial" quantized GD of aiade section 3, the baseline IADE improves on.

Each worker quantizes its own gradient with a FIXED error (``compressor=bounded``,
``compressor.eps``), the server averages and updates, and broadcasts the iterate:
x_{k+1} = x_k - eta (1/N) sum_i Q(grad f_i(x_k), eps). Since grad f_i(x*) != 0 for
heterogeneous workers and the error does not shrink, it stalls at an error floor of order
eta eps / (1 - c): the constant-error drawback the paper names. This is ``gd`` with the
bounded quantizer, kept as its own name so sweeps and reports label it.
"""

from __future__ import annotations

from dataclasses import replace

from compress_train.algorithms.gd import GD


class QGD(GD):
    name = "qgd"
    needs = replace(GD.needs, compressor_name="bounded", compressor_params={"mode": "deterministic"})


IMPLEMENTATION = QGD
