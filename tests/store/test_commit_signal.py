"""Waiting for commits: a follower wakes on the signal, and a cancelled follower stops, even
when the cancellation lands just as a commit wakes it (Python 3.11's ``asyncio.wait_for``
swallows that cancellation; followers must not use it)."""

from __future__ import annotations

import asyncio

import pytest

from invariant.store.signal import CommitSignal, wait_for_head
from invariant.tasks import stop_task, wait_briefly


async def test_a_follower_returns_once_the_head_passes_its_position() -> None:
    signal, head = CommitSignal(), [0]

    async def read_head() -> int:
        return head[0]

    follower = asyncio.create_task(wait_for_head(read_head, signal, 0, timeout=30, recheck=30))
    await asyncio.sleep(0.01)
    assert not follower.done()
    head[0] = 1
    signal.notify()
    await asyncio.wait_for(follower, 5)


async def test_a_follower_cancelled_as_a_commit_wakes_it_stops() -> None:
    signal = CommitSignal()

    async def read_head() -> int:
        return 0  # the commit that wakes it is not past its position: it would wait again

    follower = asyncio.create_task(wait_for_head(read_head, signal, 0, timeout=30, recheck=30))
    await asyncio.sleep(0.01)
    signal.notify()  # its future is done now; the follower has not run since
    follower.cancel()
    done, _ = await asyncio.wait({follower}, timeout=5)
    assert done, "the cancelled follower went on waiting"
    assert follower.cancelled()


async def test_wait_briefly_reports_a_timeout_and_stops_the_coroutine_it_started() -> None:
    stopped: list[bool] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            stopped.append(True)
            raise

    assert await wait_briefly(slow(), 0.01) is False
    await asyncio.sleep(0.01)  # the cancelled task runs to its end
    assert stopped == [True]
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    assert await wait_briefly(future, 0.01) is False
    assert not future.cancelled()  # a future it did not make is left alone
    future.set_result(None)
    assert await wait_briefly(future, 1) is True


async def test_wait_briefly_propagates_a_cancellation_that_meets_completion() -> None:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    waiting = asyncio.create_task(wait_briefly(future, 30))
    await asyncio.sleep(0.01)
    future.set_result(None)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_stop_task_cancels_and_waits_and_reports_a_real_failure() -> None:
    ended: list[str] = []

    async def worker() -> None:
        try:
            await asyncio.sleep(30)
        finally:
            ended.append("worker")

    task = asyncio.create_task(worker())
    await asyncio.sleep(0)
    await stop_task(task)
    assert task.cancelled() and ended == ["worker"]

    async def fails_when_stopped() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            raise ValueError("cleanup failed") from None

    failing = asyncio.create_task(fails_when_stopped())
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="cleanup failed"):
        await stop_task(failing)


async def test_stop_task_lets_its_callers_own_cancellation_through() -> None:
    release = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            await release.wait()  # cleanup that takes a while
            raise

    task = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    stopping = asyncio.create_task(stop_task(task))
    await asyncio.sleep(0.01)
    stopping.cancel()  # the caller itself is cancelled while it waits
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert stopping.cancelled()
