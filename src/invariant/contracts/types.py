"""Field types with a fixed meaning across validation, JSON and the database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDateTime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""An aware date-time, normalised to UTC. Naive date-times are refused (``timezone_required``);
in JSON it is UTC ISO 8601 (``2024-05-01T12:00:00+00:00``)."""
