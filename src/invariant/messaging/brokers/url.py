"""A broker from a URL (configuration at the edge): ``inprocess:``, ``nats://host:4222``,
``amqp://user:pass@host:5672/``, ``redis://host:6379/0``, ``kafka://host:9092``. Adapters are
imported only when asked for."""

from __future__ import annotations

from invariant.domain.errors import ConfigurationError
from invariant.messaging.port import Broker


def broker_from_url(url: str, *, channel: str = "invariant") -> Broker:
    """The adapter for ``url``, on ``channel`` (stream, exchange, stream key or topic)."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "inprocess":
        from invariant.messaging.brokers.inprocess import InProcessBroker
        return InProcessBroker()
    if scheme in ("nats", "tls"):
        from invariant.messaging.brokers.nats import NatsBroker
        return NatsBroker(url, stream=channel.upper())
    if scheme in ("amqp", "amqps"):
        from invariant.messaging.brokers.rabbitmq import RabbitMQBroker
        return RabbitMQBroker(url, exchange=channel)
    if scheme in ("redis", "rediss"):
        from invariant.messaging.brokers.redis_streams import RedisStreamsBroker
        return RedisStreamsBroker(url, stream=f"{channel}:messages")
    if scheme == "kafka":
        from invariant.messaging.brokers.kafka import KafkaBroker
        return KafkaBroker(url.split("://", 1)[-1], topic=channel)
    raise ConfigurationError(
        f"unsupported broker URL {url!r}: use inprocess:, nats://, amqp://, redis:// or "
        "kafka://")
