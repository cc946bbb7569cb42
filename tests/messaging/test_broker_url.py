"""broker_from_url: each scheme picks its adapter, and a Kafka URL's options are read
strictly (a misspelt or non-boolean option is an error, never silently ignored)."""

import pytest

from invariant.domain.errors import ConfigurationError
from invariant.messaging.brokers import broker_from_url
from invariant.messaging.brokers.kafka import KafkaBroker


def test_kafka_url_gives_bootstrap_servers_and_an_idempotent_producer_by_default() -> None:
    broker = broker_from_url("kafka://k1:9092,k2:9092", channel="orders")
    assert isinstance(broker, KafkaBroker)
    assert broker.bootstrap == "k1:9092,k2:9092"
    assert broker.idempotent is True


@pytest.mark.parametrize(("query", "expected"), [("false", False), ("FALSE", False),
                                                 ("true", True)])
def test_kafka_url_can_turn_the_idempotent_producer_off(query: str, expected: bool) -> None:
    broker = broker_from_url(f"kafka://127.0.0.1:9092?idempotent={query}")
    assert isinstance(broker, KafkaBroker)
    assert broker.bootstrap == "127.0.0.1:9092"
    assert broker.idempotent is expected


@pytest.mark.parametrize(("url", "says"), [
    ("kafka://h:9092?idempotant=false", "unknown option idempotant"),
    ("kafka://h:9092?idempotent=no", "is not a boolean"),
    ("kafka://h:9092?idempotent=true&idempotent=false", "is not a boolean"),
    ("kafka://?idempotent=false", "names no server"),
])
def test_a_bad_kafka_url_is_refused_naming_what_is_wrong(url: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        broker_from_url(url)


def test_an_unknown_scheme_lists_the_supported_ones() -> None:
    with pytest.raises(ConfigurationError, match="use inprocess:, nats://"):
        broker_from_url("mqtt://127.0.0.1:1883")
