"""Messaging: the outbox relay, the broker port and its adapters, idempotent consumers
(inbox, retries, dead letters), the published language and anti-corruption helpers.

Adapters are imported from their own modules (``invariant.messaging.brokers.nats`` ...), so that
only the client libraries you use are loaded.
"""

from invariant.messaging.brokers.inprocess import InProcessBroker
from invariant.messaging.brokers.sql import SqlBroker
from invariant.messaging.consumer import Consumer
from invariant.messaging.errors import (
    BrokerError,
    MessagingError,
    PermanentMessageError,
    UnreadableMessageError,
    UnsupportedVersionError,
)
from invariant.messaging.port import UNREADABLE, Broker, Delivery, Message
from invariant.messaging.published_language import (
    Amount,
    IntegrationEvent,
    IntegrationEvents,
    UtcTime,
    json_schema,
)
from invariant.messaging.relay import OutboxRelay, RelayLag
from invariant.retry import RetryPolicy

__all__ = [
    "UNREADABLE",
    "Amount",
    "Broker",
    "BrokerError",
    "Consumer",
    "Delivery",
    "InProcessBroker",
    "IntegrationEvent",
    "IntegrationEvents",
    "Message",
    "MessagingError",
    "OutboxRelay",
    "PermanentMessageError",
    "RelayLag",
    "RetryPolicy",
    "SqlBroker",
    "UnreadableMessageError",
    "UnsupportedVersionError",
    "UtcTime",
    "json_schema",
]
