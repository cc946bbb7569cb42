"""A live worker trusts the checkpoint it holds the lease of: woken by commits, it does not
read it again each time; a rebuild made elsewhere is still found, by the next page's claim,
and nothing is applied twice or skipped (a pause: ``test_pause``, with the same long idle
recheck)."""

from __future__ import annotations

import asyncio

from invariant.projections.catch_up import Track
from tests.projections.conftest import Bank
from tests.projections.test_failures_and_consistency import Applications, counts
from tests.projections.test_pause import state_of

LONG = 30.0
"""An idle recheck no test waits for: whatever is found is found by a commit's wake."""


async def test_commits_do_not_make_the_worker_read_its_checkpoint_again(bank: Bank) -> None:
    await bank.open("ACC-1", "10", "USER-1")
    projection = Applications()
    runner = bank.runner([projection], idle_recheck=LONG)
    await runner.setup()
    loads = 0
    load = runner._load

    async def counted(track: Track) -> None:
        nonlocal loads
        loads += 1
        await load(track)

    runner._load = counted  # type: ignore[method-assign]
    live = asyncio.create_task(runner.run())
    try:
        await runner.wait_until("applications", 1, timeout=10)
        assert loads == 1  # when it took the lease
        for _ in range(20):
            head = await bank.deposit("ACC-1", "1")
            await runner.wait_until("applications", head, timeout=10)
    finally:
        live.cancel()
    assert loads == 1, f"the checkpoint was read {loads - 1} more times for 20 commits"
    assert await counts(bank, projection) == {p: 1 for p in range(1, 22)}


async def test_a_rebuild_by_another_runner_is_found_by_the_next_claim(bank: Bank) -> None:
    for i in range(5):
        await bank.open(f"ACC-{i}", "10", "USER-1")
    projection = Applications()
    runner = bank.runner([projection], idle_recheck=LONG)
    await runner.setup()
    live = asyncio.create_task(runner.run())
    try:
        await runner.wait_until("applications", 5, timeout=10)
        operator = bank.runner([Applications()])  # the console's, in another process
        rebuilding = asyncio.create_task(operator.rebuild("applications"))
        # It resets the checkpoint, then (PostgreSQL: the live worker holds the lease)
        # follows the live worker, which a commit wakes.
        await asyncio.sleep(0.3)
        head = await bank.deposit("ACC-1", "1")
        assert await asyncio.wait_for(rebuilding, 10) >= 5
        await runner.wait_until("applications", head, timeout=10)
    finally:
        live.cancel()
    assert await state_of(runner) == ("running", head)
    # Each event once: the rows the rebuild removed were applied again, none twice.
    assert await counts(bank, projection) == {p: 1 for p in range(1, head + 1)}
