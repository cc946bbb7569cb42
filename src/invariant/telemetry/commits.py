"""The event store hook: a span per commit (its streams, events, messages and the size of
the commit batch it was written in), the events it appended counted, and the commit's
span context written into every event's and message's metadata, so that whatever reacts
to them later continues the trace."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from invariant.telemetry import metrics, tracing

if TYPE_CHECKING:
    from invariant.store.port import EventStorage
    from invariant.store.records import Commit, CommitResult


async def commit(storage: EventStorage, work: Commit) -> CommitResult:
    """``storage.commit(work)``, traced and counted when telemetry is on."""
    if not tracing.enabled():
        if not metrics.enabled():
            return await storage.commit(work)
        result = await storage.commit(work)
        metrics.events_appended(sum(len(a.events) for a in work.appends))
        return result
    events = sum(len(a.events) for a in work.appends)
    with tracing.span("event_store commit", {
            "invariant.commit.streams": len(work.appends), "invariant.commit.events": events,
            "invariant.commit.messages": len(work.messages)}, kind="client"):
        result = await storage.commit(_with_trace_context(work))
        tracing.set_attribute("invariant.commit.batch_size", result.batch_size)
    metrics.events_appended(events)
    return result


def _with_trace_context(work: Commit) -> Commit:
    for append in work.appends:
        for event in append.events:
            tracing.inject(event.metadata)
    if not work.messages:
        return work
    messages = []
    for message in work.messages:
        metadata = dict(message.metadata)
        tracing.inject(metadata)
        messages.append(replace(message, metadata=metadata))
    return replace(work, messages=tuple(messages))
