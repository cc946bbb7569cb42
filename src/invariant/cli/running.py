"""What every long-running command does alike: stop on SIGINT/SIGTERM (or after a time),
and turn invariant's errors into a message and exit code 2."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer

from invariant.domain.errors import InvariantError

T = TypeVar("T")


def guarded(main: Callable[[], Awaitable[T]]) -> T:
    """Run ``main``; an InvariantError is printed as ``error: ...`` and exits with 2."""
    async def run() -> T:
        return await main()

    try:
        return asyncio.run(run())
    except InvariantError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def stop_event(seconds: float | None) -> asyncio.Event:
    """An event set by SIGINT or SIGTERM, or after ``seconds`` (call inside the loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if seconds is not None:
        loop.call_later(seconds, stop.set)
    return stop
