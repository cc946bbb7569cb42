"""Time for every part of invariant: UTC always, injectable for tests (a :data:`Clock` is
any function returning an aware datetime; ``invariant.testing.ManualClock`` is one).

Standard library only; the microsecond helpers are what the SQLite tables store."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """Now, in UTC (the default clock)."""
    return datetime.now(UTC)


def micros_of(clock: Clock) -> Callable[[], int]:
    """``clock``'s time in microseconds since the Unix epoch; read straight from the system
    clock when ``clock`` is :func:`utc_now` (the same value, without making a datetime)."""
    if clock is utc_now:
        return _now_micros
    return lambda: to_micros(clock())


def _now_micros() -> int:
    return time.time_ns() // 1000  # floored, as datetime.now() floors


def to_micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch (exact; what the SQLite adapter stores)."""
    delta = moment.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    """The UTC datetime of a microsecond timestamp (the last one is remembered: the events
    of one commit share their time)."""
    global _last
    last = _last  # read once: another thread may replace it
    if last[0] == micros:
        return last[1]
    moment = _EPOCH + timedelta(microseconds=micros)  # a third of fromtimestamp's cost
    _last = (micros, moment)
    return moment


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_last: tuple[int, datetime] = (-1, _EPOCH)
