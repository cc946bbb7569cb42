"""Waiting, polling and stopping in asyncio without swallowing a cancellation.

Timed waits go through :func:`wait_briefly`, never ``asyncio.wait_for``: on Python 3.11,
``wait_for`` swallows a cancellation that arrives as the awaited future completes, and a
follower or worker cancelled just then would run on forever. Standard library only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol


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


class Retrying(Protocol):
    """What :func:`poll` counts failures on."""

    failures: int
    last_error: str | None


class Waking(Protocol):
    """What wakes an idle :func:`poll` early (e.g. :class:`invariant.wakeups.Wakeups`)."""

    @property
    def woken(self) -> int:
        """How many wakes so far (read before looking for work, passed to :meth:`wait`)."""

    async def wait(self, stop: asyncio.Event, timeout: float,  # noqa: ASYNC109
                   since: int | None = None) -> None:
        """Return after ``timeout`` seconds at most, sooner when woken or stopped, at once
        when woken since :attr:`woken` was ``since``."""


async def poll(owner: Retrying, step: Callable[[], Awaitable[int]], *, stop: asyncio.Event,
               idle: float, retry: float, errors: tuple[type[Exception], ...],
               warn: Callable[[str], object] | None = None,
               wake: Waking | None = None, linger: float = 0.0) -> None:
    """Run ``step`` until ``stop`` is set: again at once after it did something, ``idle``
    seconds after it did nothing (sooner when ``wake`` wakes it), ``retry`` seconds after
    it raised one of ``errors`` (counted in ``owner.failures`` and ``owner.last_error``,
    passed to ``warn``). A wake while ``step`` runs is not lost: the next wait returns at
    once. ``linger``: a wake runs ``step`` no sooner than ``linger`` seconds after the
    step that found nothing, so that what happens meanwhile is done in one step (a wake
    after a longer quiet runs it at once)."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        seen = wake.woken if wake is not None else 0
        try:
            done = await step()
        except errors as exc:
            done = 0
            owner.failures += 1
            owner.last_error = f"{type(exc).__name__}: {exc}"
            if warn is not None:
                warn(owner.last_error)
            await sleep_or_stop(stop, retry)
        if not done:
            if wake is None:
                await sleep_or_stop(stop, idle)
            else:
                looked = loop.time()
                await wake.wait(stop, idle, since=seen)
                rest = looked + linger - loop.time()
                if rest > 0:
                    await sleep_or_stop(stop, rest)
