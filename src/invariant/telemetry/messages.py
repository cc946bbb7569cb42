"""The broker hooks: a producer span per message the outbox relay publishes (its context
replaces the message's, so the consumer is its child), and a consumer span per message
handled, the child of the context the message carries."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from invariant.telemetry import tracing
from invariant.telemetry.correlation import correlated

if TYPE_CHECKING:
    from invariant.messaging.port import Message

T = TypeVar("T")


async def published(publish: Callable[[Sequence[Message]], Awaitable[None]],
                    batch: Sequence[Message]) -> None:
    """``publish(batch)``, with one ``outbox publish`` span per message while tracing is on."""
    with publishing(batch) as traced_batch:
        await publish(traced_batch)


@contextlib.contextmanager
def publishing(batch: Sequence[Message]) -> Iterator[Sequence[Message]]:
    """One ``outbox publish`` span per message of ``batch`` while tracing is on, for the
    time of the block; yields the messages to publish (carrying their span's context, so
    the consumer is its child), ``batch`` itself while tracing is off."""
    if not tracing.enabled() or not batch:
        yield batch
        return
    spans = [tracing.start("outbox publish", _attributes(m), kind="producer",
                           parent=m.metadata) for m in batch]
    out: list[Message] = []
    for message, span in zip(batch, spans, strict=True):
        metadata = dict(message.metadata)
        tracing.inject_span(metadata, span)
        out.append(replace(message, metadata=metadata))
    try:
        yield out
    except BaseException as exc:
        for span in spans:
            span.record_exception(exc)
        raise
    finally:
        for span in spans:
            span.end()


async def consumed(group: str, message: Message, work: Awaitable[T]) -> T:
    """Await ``work`` (handling ``message`` for ``group``) in a ``consume`` span, the child
    of the message's trace context, with the message's correlation id in the logs."""
    with consuming(group, message):
        return await work


@contextlib.contextmanager
def consuming(group: str, message: Message) -> Iterator[None]:
    """The block handles ``message`` for ``group``: in a ``consume`` span, the child of the
    message's trace context, with the message's correlation id in the logs (also inside
    a transaction that handles a page of messages, one block per message)."""
    with correlated(message.metadata):
        if not tracing.enabled():
            yield
            return
        with tracing.span(f"consume {group}", {**_attributes(message),
                                               "messaging.consumer.group.name": group},
                          kind="consumer", parent=message.metadata):
            yield


def _attributes(message: Message) -> dict[str, Any]:
    return {"messaging.message.id": message.message_id,
            "invariant.message.type": message.message_type,
            "invariant.stream_id": message.stream_id}
