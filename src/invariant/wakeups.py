"""Waking the tasks of this process that wait for something to happen (a message
published, a job enqueued), on whichever event loop each one waits. Standard library
only."""

from __future__ import annotations

import asyncio
import contextlib
import threading

Waiter = tuple[asyncio.AbstractEventLoop, asyncio.Event]


class Wakeups:
    """The waiters of one kind of happening; :meth:`wake` sets every one's event."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[Waiter] = set()

    def add(self, waiter: Waiter) -> None:
        with self._lock:
            self._waiters.add(waiter)

    def discard(self, waiter: Waiter) -> None:
        with self._lock:
            self._waiters.discard(waiter)

    def wake(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # its loop is closed
                loop.call_soon_threadsafe(event.set)

    async def wait(self, stop: asyncio.Event, timeout: float) -> None:  # noqa: ASYNC109
        """Wait at most ``timeout`` seconds, less if woken or if ``stop`` is set."""
        event = asyncio.Event()
        waiter = (asyncio.get_running_loop(), event)
        self.add(waiter)
        waits = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.discard(waiter)
            for wait in waits:
                wait.cancel()
