"""Waiting and stopping in asyncio without swallowing a cancellation.

Timed waits go through :func:`wait_briefly`, never ``asyncio.wait_for``: on Python 3.11,
``wait_for`` swallows a cancellation that arrives as the awaited future completes, and a
follower or worker cancelled just then would run on forever. Standard library only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any


async def wait_briefly(waitable: Awaitable[object], timeout: float) -> bool:  # noqa: ASYNC109
    """Wait at most ``timeout`` seconds for ``waitable``; True when it finished in time.

    A future is left as it is on timeout; a coroutine still running is cancelled. A
    cancellation of the caller always propagates, even when it arrives just as ``waitable``
    finishes (``asyncio.wait_for`` on Python 3.11 swallows that one).
    """
    future = asyncio.ensure_future(waitable)
    ours = future is not waitable  # a task made here for a coroutine: ours to stop
    try:
        done, _ = await asyncio.wait((future,), timeout=timeout)
    except BaseException:
        if ours:
            future.cancel()
        raise
    if not done and ours:
        future.cancel()
    return bool(done)


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``stop`` is set meanwhile."""
    await wait_briefly(stop.wait(), seconds)


async def stop_task(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it has ended; raise what it failed with, if it failed
    with anything but that cancellation. A cancellation of the caller while it waits
    propagates (``suppress(CancelledError)`` around ``await task`` would swallow it)."""
    task.cancel()
    await asyncio.wait((task,))
    if not task.cancelled():
        error = task.exception()
        if error is not None:
            raise error
