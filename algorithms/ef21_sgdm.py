"""EF21-SGDM (Fatkhullin, Tyurin & Richtarik 2023, Alg. 1; baselines.md C6): EF21 on the momentum
v_i <- (1 - eta) v_i + eta grad f_i(x; xi) (``algorithms/ef21.py``)."""

from compress_train.algorithms.ef21 import EF21


class EF21SGDM(EF21):
    name = "ef21_sgdm"
    uses_momentum = True


IMPLEMENTATION = EF21SGDM
