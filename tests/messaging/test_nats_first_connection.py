"""A NATS server that is not there when the broker first connects is an error to report,
not something to wait for in silence (once connected, the client reconnects forever: see
tests/shop/test_health.py, which stops and restarts a server of its own)."""

from __future__ import annotations

import pytest

from invariant.messaging.brokers.nats import NatsBroker
from invariant.messaging.errors import BrokerError
from tests.shop.conftest import free_port


async def test_no_server_at_the_first_connection_is_a_broker_error_naming_the_url() -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    broker = NatsBroker(url)
    with pytest.raises(BrokerError, match=f"cannot connect to NATS at {url}"):
        await broker.connect()
