"""The trainer's one metrics collective per step: each process lays its fields end to end, and the
gathered list splits back into each field over all workers, in worker order."""

from __future__ import annotations

from compress_train.runner.trainer import gathered_fields


def test_two_ranks_of_two_workers_split_back_into_each_field_in_worker_order():
    losses, errors, accs = [[1.0, 2.0], [3.0, 4.0]], [[0.1, 0.2], [0.3, 0.4]], [[0.5, 0.6], [0.7, 0.8]]
    gathered = [x for r in range(2) for f in (losses[r], errors[r], accs[r]) for x in f]
    out = gathered_fields(gathered, [losses[0], errors[0], accs[0]])
    assert out == [[1.0, 2.0, 3.0, 4.0], [0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]]


def test_one_process_gets_its_own_fields_back():
    assert gathered_fields([1.0, 2.0, 9.0], [[1.0, 2.0], [9.0]]) == [[1.0, 2.0], [9.0]]
