"""Waking followers of the global log when a commit lands, without polling.

Adapters notify a :class:`CommitSignal` after every successful commit; a follower waiting in
:func:`wait_for_head` registers itself *before* it reads the head, so a commit landing
between the read and the wait still wakes it.

The wait goes through :func:`invariant.tasks.wait_briefly` (never ``asyncio.wait_for``), so
that a follower cancelled just as a commit woke it stops instead of following the log forever.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

from invariant.tasks import wait_briefly


class CommitSignal:
    """Wakes every coroutine waiting for the next commit, on any event loop or thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[asyncio.Future[None]] = set()

    def listen(self) -> asyncio.Future[None]:
        """A future resolved by the next :meth:`notify` (call :meth:`forget` when done)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._waiters.add(future)
        return future

    def forget(self, future: asyncio.Future[None]) -> None:
        with self._lock:
            self._waiters.discard(future)

    def notify(self) -> None:
        """Wake everyone listening now (safe to call from any thread)."""
        if not self._waiters:
            # Nobody to wake (the common case of a commit). Safe without the lock: a
            # listener added after this check reads the head afterwards, which already
            # includes the commit being signalled.
            return
        with self._lock:
            waiters, self._waiters = self._waiters, set()
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for future in waiters:
            loop = future.get_loop()
            if loop is running:
                _wake(future)
            elif not loop.is_closed():
                loop.call_soon_threadsafe(_wake, future)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def wait_for_head(
    head: Callable[[], Awaitable[int]],
    signal: CommitSignal,
    after_position: int,
    timeout: float,  # noqa: ASYNC109 (returns on timeout, does not raise)
    recheck: float,
) -> None:
    """Return once ``head()`` exceeds ``after_position``, or when ``timeout`` has passed.

    Wakes on ``signal`` and, in case a commit was made where no signal reaches us (another
    process), re-reads the head every ``recheck`` seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        woken = signal.listen()
        try:
            if await head() > after_position:
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            await wait_briefly(woken, min(remaining, recheck))
        finally:
            signal.forget(woken)
