"""Waking idle workers: a wake is never lost, even one that comes while the worker is still
looking for work (nobody waits yet), and a worker on another thread's loop is woken too."""

from __future__ import annotations

import asyncio
import threading

from invariant.tasks import poll
from invariant.wakeups import Wakeups


class Owner:
    failures = 0
    last_error: str | None = None


async def test_a_wake_while_the_worker_looks_for_work_makes_it_look_again() -> None:
    wakeups, stop = Wakeups(), asyncio.Event()
    work = asyncio.Event()  # set when there is work
    looked = asyncio.Queue[bool]()

    async def step() -> int:
        found = work.is_set()
        if not found:
            work.set()  # work arrives as the worker finds none, and its wake finds
            wakeups.wake()  # nobody waiting yet
        else:
            stop.set()
        await looked.put(found)
        return 0

    task = asyncio.create_task(poll(Owner(), step, stop=stop, idle=3600, retry=3600,
                                    errors=(), wake=wakeups))  # would look in an hour
    assert await looked.get() is False
    assert await looked.get() is True  # at once, not after the idle hour
    await task


async def test_a_wait_returns_at_once_when_woken_since_the_count_was_read() -> None:
    wakeups, stop = Wakeups(), asyncio.Event()
    seen = wakeups.woken
    wakeups.wake()
    await wakeups.wait(stop, 3600, since=seen)
    assert wakeups.waiting == 0


async def test_a_waiter_on_another_threads_loop_is_woken() -> None:
    wakeups = Wakeups()
    waiting = threading.Event()
    woken: list[bool] = []

    async def wait_there() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(wakeups.wait(stop, 3600))
        while not wakeups.waiting:  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        waiting.set()
        await task
        woken.append(True)

    thread = threading.Thread(target=lambda: asyncio.run(wait_there()))
    thread.start()
    await asyncio.to_thread(waiting.wait)
    wakeups.wake()
    await asyncio.to_thread(thread.join)
    assert woken == [True]
