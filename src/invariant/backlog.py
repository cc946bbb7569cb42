"""How much background work waits: the gauge intake consults before accepting more.

An application's background workers (the outbox relay, the process runner, the job
worker, consumers on the SQL broker) each say how many items of work wait for them; a
:class:`Backlog` adds them up and compares the sum with a bound. Intake asks
:meth:`Backlog.over` before it accepts work (see :mod:`invariant.http.backpressure`), so
that an application answers "busy, retry later" instead of growing a backlog it cannot
finish. Measuring costs a few counting reads: the sum is remembered for ``interval``
seconds (1) and measured again in the background after that; a sum older than
``max_age`` (5 s, after an idle spell) is measured again before it is used.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

from invariant.domain.errors import ConfigurationError

Measure = Callable[[], Awaitable[int]]


class Backlog:
    """The items waiting in ``measures`` (by worker name), against ``limit``."""

    def __init__(self, measures: Mapping[str, Measure], *, limit: int,
                 interval: float = 1.0, max_age: float = 5.0) -> None:
        if limit < 0:
            raise ConfigurationError(f"a backlog limit is 0 or more items, got {limit}")
        self.measures = dict(measures)
        self.limit = limit
        self.interval = interval
        self.max_age = max_age
        self.waiting: dict[str, int] = {}
        """The last measure of each worker's backlog."""
        self._measured_at: float | None = None
        self._measuring: asyncio.Task[None] | None = None

    @property
    def total(self) -> int:
        """The items waiting at the last measure."""
        return sum(self.waiting.values())

    async def over(self) -> bool:
        """True when more than ``limit`` items wait (a recent measure, see the module)."""
        age = None if self._measured_at is None else time.monotonic() - self._measured_at
        if age is None or age >= self.max_age:
            await self.measure()
        elif age >= self.interval and (self._measuring is None or self._measuring.done()):
            self._measuring = asyncio.create_task(self.measure())
        return self.total > self.limit

    async def measure(self) -> None:
        """Measure every worker's backlog now."""
        names = list(self.measures)
        counts = await asyncio.gather(*(self.measures[name]() for name in names))
        self.waiting = dict(zip(names, counts, strict=True))
        self._measured_at = time.monotonic()
