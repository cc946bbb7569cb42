"""The job hooks: a job queued while a span is open carries its trace context in its
payload (under ``_trace``), and the job's run is a span, the child of that context."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from invariant.telemetry import tracing

if TYPE_CHECKING:
    from invariant.messaging.jobs.table import Job

T = TypeVar("T")
KEY = "_trace"
"""The payload's key for the trace context (set only while tracing is on)."""


def queued(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """``payload`` with the current trace context under ``_trace`` (as it is while tracing
    is off or no span is open)."""
    if not tracing.enabled():
        return payload
    context: dict[str, Any] = {}
    tracing.inject(context)
    return {**payload, KEY: context} if context else payload


async def ran(job: Job, work: Awaitable[T]) -> T:
    """Await ``work`` (running ``job``) in a ``job`` span, the child of the job's context."""
    if not tracing.enabled():
        return await work
    parent = job.payload.get(KEY)
    with tracing.span(f"job {job.name}", {"invariant.job.id": job.id,
                                          "invariant.job.name": job.name,
                                          "invariant.job.attempt": job.attempt},
                      parent=parent if isinstance(parent, dict) else None):
        return await work
