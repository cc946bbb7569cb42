"""An operator pauses a projection: no worker applies events to it, not even a live one
that holds its lease, until it is resumed; then it goes on from where it stopped."""

from __future__ import annotations

import asyncio

import pytest

from invariant.domain import ProjectionFailedError
from invariant.projections import ProjectionRunner
from tests.projections.conftest import Bank
from tests.projections.test_failures_and_consistency import Applications, counts


async def state_of(runner: ProjectionRunner) -> tuple[str, int]:
    [status] = await runner.status()
    return status.state, status.checkpoint


async def test_a_paused_projection_is_left_alone_until_resumed(bank: Bank) -> None:
    await bank.open("ACC-1", "10", "USER-1")
    projection = Applications()
    runner = bank.runner([projection])
    await runner.setup()
    await runner.catch_up()
    assert await runner.pause("applications") is True
    assert await runner.pause("applications") is False  # already paused: nothing changes
    await bank.deposit("ACC-1", "5")

    assert await runner.catch_up() == 0
    assert await state_of(runner) == ("paused", 1)

    await runner.resume("applications")
    assert await runner.catch_up() == 1
    assert await state_of(runner) == ("running", 2)
    assert await counts(bank, projection) == {1: 1, 2: 1}


# A short idle recheck, or one no test waits for: then the pause is found only by the
# claim of the page the commit's wake reads (the worker does not reread its checkpoint).
@pytest.mark.parametrize("idle_recheck", [0.05, 30.0])
async def test_a_live_worker_stops_applying_when_paused_and_goes_on_when_resumed(
        bank: Bank, idle_recheck: float) -> None:
    await bank.open("ACC-1", "10", "USER-1")
    projection = Applications()
    runner = bank.runner([projection], idle_recheck=idle_recheck)
    await runner.setup()
    live = asyncio.create_task(runner.run())
    try:
        await runner.wait_until("applications", 1, timeout=10)
        await runner.pause("applications")
        head = await bank.deposit("ACC-1", "5")
        for _ in range(20):  # the worker gets every chance to (wrongly) apply it
            await asyncio.sleep(0.02)
        assert await state_of(runner) == ("paused", 1)
        await runner.resume("applications")
        await runner.wait_until("applications", head, timeout=10)
    finally:
        live.cancel()
    assert await counts(bank, projection) == {1: 1, 2: 1}


async def test_a_failed_projection_cannot_be_paused_and_stays_failed(bank: Bank) -> None:
    await bank.open("ACC-1", "10", "USER-1")
    runner = bank.runner([Applications(fail_on={1})])
    await runner.setup()
    with pytest.raises(ProjectionFailedError):
        await runner.catch_up()
    assert await runner.pause("applications") is False
    assert (await state_of(runner))[0] == "failed"
