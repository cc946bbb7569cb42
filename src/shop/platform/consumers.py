"""Consumer handlers of integration events: decode the ones a context reads, skip the rest."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

from invariant.messaging.consumer import Handler, subscribed
from invariant.messaging.port import Message
from invariant.messaging.published_language import IntegrationEvent, IntegrationEvents


def integration_consumer(apply: Callable[[Connection, IntegrationEvent], None],
                         *events: type[IntegrationEvent]) -> Handler:
    """A consumer handler calling ``apply`` with each message of one of ``events``' types,
    decoded (an unsupported version or invalid data raises, so the message is parked)."""
    known = IntegrationEvents(*events)
    names = frozenset(event.event_name for event in events)

    def consume(conn: Connection, message: Message) -> None:
        if message.message_type in names:  # a broker that cannot filter carries them all
            apply(conn, known.decode(message))

    return subscribed(consume, names)
