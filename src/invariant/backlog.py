"""How much background work waits: the gauge intake consults before accepting more.

An application's background workers (the outbox relay, the process runner, the job
worker, consumers on the SQL broker) each say how many items of work wait for them; a
:class:`Backlog` adds them up and compares the sum with a bound. Intake asks
:meth:`Backlog.over` before it accepts work (see :mod:`invariant.http.backpressure`), so
that an application answers "busy, retry later" instead of growing a backlog it cannot
finish. Measuring costs a few counting reads: the sum is remembered for ``interval``
seconds (1) and measured again in the background after that; a sum older than
``max_age`` (5 s, after an idle spell) is measured again before it is used.

Intake may also *wait* for the workers instead of refusing at once: :meth:`Backlog.settle`
holds its caller while the backlog is over the bound, measuring it again every ``pace``
seconds (one measure shared by every waiting caller), and lets it go as soon as the sum is
back under the bound. Holding a request slows a client down to the pace the workers keep,
without an error it must handle; a client held too long is refused.

A count alone can let intake run ahead: ten skipped messages cost a consumer less than
one command costs the process runner, a count measured a second ago says nothing of the
burst accepted since, and a stage whose work waits long is not told apart from one whose
work passes quickly. With ``oldest`` (seconds), the backlog is also over its bound while
the oldest item waiting for any worker has waited longer than that: a measure may say how
long its oldest item has waited (:class:`Waiting`), and between measures that item is
taken to wait on (its age grows with the time since the measure, until a measure says
otherwise), so a stale measure holds intake sooner, never later. Bounding the age bounds
what the bound is for, the time an accepted request's work waits, whatever the work.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from invariant.domain.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class Waiting:
    """What waits for a worker: how many items, and how long the oldest has waited
    (seconds; 0 when nothing waits)."""

    items: int
    oldest: float = 0.0


Measure = Callable[[], Awaitable[int | Waiting]]
"""A worker's backlog: a count, or a :class:`Waiting` that says the oldest item's age too."""


class Backlog:
    """The items waiting in ``measures`` (by worker name), against ``limit``."""

    def __init__(self, measures: Mapping[str, Measure], *, limit: int,
                 oldest: float | None = None, interval: float = 1.0, max_age: float = 5.0,
                 pace: float = 0.05) -> None:
        if limit < 0:
            raise ConfigurationError(f"a backlog limit is 0 or more items, got {limit}")
        if oldest is not None and oldest <= 0:
            raise ConfigurationError(
                f"a backlog's oldest wait is more than 0 seconds (None: no bound), got {oldest}")
        if pace <= 0:
            raise ConfigurationError(f"a backlog's pace is more than 0 seconds, got {pace}")
        self.measures = dict(measures)
        self.limit = limit
        self.oldest = oldest
        """Seconds the oldest waiting item may have waited (None: only the count bounds)."""
        self.interval = interval
        self.max_age = max_age
        self.pace = pace
        self.waiting: dict[str, int] = {}
        """The last measure of each worker's backlog."""
        self.ages: dict[str, float] = {}
        """How long each worker's oldest item had waited at the last measure (seconds;
        workers whose measure gives a count alone are left out)."""
        self.failures: dict[str, str] = {}
        """Why the last measure of a worker failed (none: every measure succeeded)."""
        self._measured_at: float | None = None
        self._measuring: asyncio.Task[None] | None = None
        self._pacing: asyncio.Task[None] | None = None

    @property
    def total(self) -> int:
        """The items waiting at the last measure."""
        return sum(self.waiting.values())

    @property
    def age(self) -> float:
        """How long the oldest item seen waiting at the last measure has waited by now, if
        it still waits (seconds; 0 when none was)."""
        if self._measured_at is None:
            return 0.0
        since = time.monotonic() - self._measured_at
        return max((age + since for name, age in self.ages.items() if self.waiting.get(name)),
                   default=0.0)

    def _over(self) -> bool:
        return self.total > self.limit or (self.oldest is not None and self.age > self.oldest)

    async def over(self) -> bool:
        """True when more than ``limit`` items wait, or the oldest has waited longer than
        ``oldest`` (a recent measure, see the module)."""
        age = math.inf if self._measured_at is None else time.monotonic() - self._measured_at
        if age >= min(self.interval, self.max_age) and (
                self._measuring is None or self._measuring.done()):
            self._measuring = asyncio.create_task(self.measure())
        if age >= self.max_age and self._measuring is not None:
            await asyncio.shield(self._measuring)  # every caller meanwhile waits for it
        return self._over()

    async def settle(self, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait until the backlog is within its bounds, ``timeout`` seconds at most; True
        when that is so (at once when it already is), False when the time ran out."""
        if not await self.over():
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self._pacing is None or self._pacing.done():
                self._pacing = asyncio.create_task(self._measure_after(self.pace))
            try:
                async with asyncio.timeout_at(deadline):
                    await asyncio.shield(self._pacing)  # a caller giving up keeps the
            except TimeoutError:                        # others' measure running
                return not self._over()
            if not self._over():
                return True
        return False

    async def _measure_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.measure()

    async def measure(self) -> None:
        """Measure every worker's backlog now. A worker whose measure fails (its broker is
        unreachable) keeps its last count, and ``failures`` says why: an outage is for
        the readiness probe to report, not a reason to answer intake with an error."""
        names = list(self.measures)
        counts = await asyncio.gather(*(self.measures[name]() for name in names),
                                      return_exceptions=True)
        waiting, ages = dict(self.waiting), dict(self.ages)
        for name, count in zip(names, counts, strict=True):
            if isinstance(count, BaseException):
                if not isinstance(count, Exception):
                    raise count  # cancelled, or the process stopping
                self.failures[name] = f"{type(count).__name__}: {count}"
                waiting.setdefault(name, 0)
            elif isinstance(count, Waiting):
                self.failures.pop(name, None)
                waiting[name], ages[name] = count.items, count.oldest
            else:
                self.failures.pop(name, None)
                waiting[name] = count
        self.waiting, self.ages = waiting, ages
        self._measured_at = time.monotonic()
