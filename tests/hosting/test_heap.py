"""Once a host has started, what start-up built is out of the collector's passes."""

from __future__ import annotations

import gc

from invariant.hosting import heap


def test_settling_freezes_the_survivors_of_start_up_once_per_process() -> None:
    heap.settle()
    frozen = gc.get_freeze_count()
    assert frozen > 0  # this process's modules, classes, functions...
    made_since = [object() for _ in range(10)]
    heap.settle()  # again (another host in the same process): nothing more is frozen
    assert gc.get_freeze_count() == frozen
    assert gc.get_threshold()[0] >= 10_000
    assert made_since
