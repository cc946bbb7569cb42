"""Broker fixtures: each test gets a channel of its own on the real server."""

from __future__ import annotations

import os
import socket

from tests.conftest import require_server

NATS_URL = os.environ.get("INVARIANT_TEST_NATS_URL", "nats://127.0.0.1:4222")
RABBITMQ_URL = os.environ.get("INVARIANT_TEST_RABBITMQ_URL",
                              "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("INVARIANT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
KAFKA_BOOTSTRAP = os.environ.get("INVARIANT_TEST_KAFKA_BOOTSTRAP")


def require_port(name: str, port: int) -> None:
    """Skip (locally) or fail (CI) when nothing listens on 127.0.0.1:``port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError as exc:
        require_server(name, exc)
