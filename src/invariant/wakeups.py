"""Waking the tasks of this process that wait for something to happen (a message
published, a job enqueued, outbox rows committed), on whichever event loop each one waits.
Standard library only."""

from __future__ import annotations

import asyncio
import contextlib
import threading

Waiter = tuple[asyncio.AbstractEventLoop, asyncio.Event]


class Wakeups:
    """The waiters of one kind of happening; :meth:`wake` sets every one's event.

    :attr:`woken` counts the wakes: a worker reads it *before* it looks for work and passes
    it to :meth:`wait`, which then returns at once if a wake came in between (one that
    found nobody waiting yet would otherwise be lost until the timeout).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[Waiter] = set()
        self.woken = 0
        """How many times :meth:`wake` was called."""

    @property
    def waiting(self) -> int:
        """How many tasks wait now."""
        return len(self._waiters)

    def add(self, waiter: Waiter) -> None:
        with self._lock:
            self._waiters.add(waiter)

    def discard(self, waiter: Waiter) -> None:
        with self._lock:
            self._waiters.discard(waiter)

    def wake(self) -> None:
        """Wake every waiter (safe from any thread; on the waiter's own loop without a
        round through its selector)."""
        self.woken += 1
        if not self._waiters:
            # Nobody to wake (the common case when the workers are busy). Safe without the
            # lock: a waiter added after this check sees the new count in wait().
            return
        with self._lock:
            waiters = list(self._waiters)
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for loop, event in waiters:
            if loop is running:
                event.set()
            else:
                with contextlib.suppress(RuntimeError):  # its loop is closed
                    loop.call_soon_threadsafe(event.set)

    async def wait(self, stop: asyncio.Event, timeout: float,  # noqa: ASYNC109
                   since: int | None = None) -> None:
        """Wait at most ``timeout`` seconds, less if woken or if ``stop`` is set; not at all
        if woken since :attr:`woken` was ``since``."""
        event = asyncio.Event()
        waiter = (asyncio.get_running_loop(), event)
        self.add(waiter)
        if since is not None and self.woken != since:
            self.discard(waiter)
            return
        waits = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.discard(waiter)
            for wait in waits:
                wait.cancel()
