"""The correlation id of the flow being handled now (a command's, a message's), for the log
lines written meanwhile."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

CURRENT: ContextVar[str | None] = ContextVar("invariant_correlation_id", default=None)


@contextmanager
def correlated(metadata: Mapping[str, Any]) -> Iterator[None]:
    """While the block runs, log lines carry ``metadata``'s ``correlation_id``."""
    value = metadata.get("correlation_id")
    token = CURRENT.set(value if isinstance(value, str) else None)
    try:
        yield
    finally:
        CURRENT.reset(token)


def correlation_id() -> str | None:
    """The correlation id of the flow being handled (None outside any)."""
    return CURRENT.get()
