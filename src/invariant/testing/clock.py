"""A clock tests control."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from invariant.domain.errors import ConfigurationError


class ManualClock:
    """Returns the same UTC time until advanced: ``clock.advance(seconds=30)``."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        if self.now.tzinfo is None:
            raise ConfigurationError("ManualClock needs an aware datetime, e.g. "
                                     "datetime(2026, 1, 1, tzinfo=UTC)")

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now = self.now + timedelta(**delta)
        return self.now
