"""The classic memory on the raw gradient as ``hard_threshold``'s network code runs it
(the PowerSGD scheme). Named apart because ``ef_sgd`` pairs it with global momentum and weight
decay applied after averaging, which the summary should say."""

from __future__ import annotations

from compress_train.algorithms.error_feedback.classic import ClassicMemory


class PowerSGDMemory(ClassicMemory):
    pass


IMPLEMENTATION = PowerSGDMemory
