"""A broker from a URL (configuration at the edge): ``inprocess:``, ``nats://host:4222``,
``amqp://user:pass@host:5672/``, ``redis://host:6379/0``, ``kafka://host:9092`` (add
``?idempotent=false`` for a Kafka server that refuses the idempotent producer). Adapters are
imported only when asked for."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

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
        bootstrap, idempotent = _kafka_settings(url)
        return KafkaBroker(bootstrap, topic=channel, idempotent=idempotent)
    raise ConfigurationError(
        f"unsupported broker URL {url!r}: use inprocess:, nats://, amqp://, redis:// or "
        "kafka://")


_BOOLEANS = {"true": True, "false": False}


def _kafka_settings(url: str) -> tuple[str, bool]:
    """``kafka://host:9092[,host:9092][?idempotent=true|false]`` as (bootstrap, idempotent);
    anything else in the query is refused, so that a misspelt option is not silently ignored."""
    parts = urlsplit(url)
    options = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(options) - {"idempotent"})
    if unknown:
        raise ConfigurationError(
            f"unknown option {', '.join(unknown)} in broker URL {url!r}: the Kafka URL takes "
            "only ?idempotent=true or ?idempotent=false")
    values = options.get("idempotent", ["true"])
    if len(values) != 1 or values[0].lower() not in _BOOLEANS:
        raise ConfigurationError(
            f"idempotent={'&'.join(values)!r} in broker URL {url!r} is not a boolean: write "
            "?idempotent=true or ?idempotent=false")
    if not parts.netloc:
        raise ConfigurationError(
            f"broker URL {url!r} names no server: write kafka://host:9092[,host:9092]")
    return parts.netloc, _BOOLEANS[values[0].lower()]
