"""Consumer handlers of integration events: decode the ones a context reads, skip the rest."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import Connection

from invariant.messaging.consumer import External, Subscribed, external, subscribed
from invariant.messaging.port import Message
from invariant.messaging.published_language import IntegrationEvent, IntegrationEvents


def integration_consumer(apply: Callable[[Connection, IntegrationEvent], None],
                         *events: type[IntegrationEvent]) -> Subscribed:
    """A consumer handler calling ``apply`` with each message of one of ``events``' types,
    decoded (an unsupported version or invalid data raises, so the message is parked)."""
    known = IntegrationEvents(*events)
    names = frozenset(event.event_name for event in events)

    def consume(conn: Connection, message: Message) -> None:
        if message.message_type in names:  # a broker that cannot filter carries them all
            apply(conn, known.decode(message))

    return subscribed(consume, names)


def external_consumer(apply: Callable[[str, IntegrationEvent], Awaitable[bool]],
                      *events: type[IntegrationEvent]) -> External:
    """A consumer handler keeping its effects outside the SQL database: ``await
    apply(message_id, event)`` with each message of one of ``events``' types, decoded as
    above; ``apply`` applies it at most once per message id in its own store and says
    whether it did now (see :func:`invariant.messaging.consumer.external`)."""
    known = IntegrationEvents(*events)
    names = frozenset(event.event_name for event in events)

    async def consume(message: Message) -> bool:
        if message.message_type not in names:  # a broker that cannot filter carries them all
            return False
        return await apply(message.message_id, known.decode(message))

    return external(consume, names)
