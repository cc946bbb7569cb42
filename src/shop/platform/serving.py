"""Serving shop from the command line (``python -m shop``): the port is taken and the shop
started before anything is printed, so that a busy port or an unreachable database is one
line naming the setting to change, not a banner followed by a traceback."""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable

import uvicorn

from invariant.domain.errors import InvariantError
from invariant.messaging.errors import BrokerError
from shop.platform.http import create_app
from shop.platform.runtime import Shop


class CouldNotStart(Exception):
    """The shop did not start; the message says why and what to do, in one line."""


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` for the server to listen on; :class:`CouldNotStart`
    when the address cannot be had."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CouldNotStart(_cannot_listen(host, port, exc)) from exc
    return sock


def _cannot_listen(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (f"port {port} on {host} is in use by another program; "
                "set SHOP_PORT to a free port")
    return (f"cannot listen on {host}:{port} ({exc.strerror or exc}); set SHOP_HOST to an "
            "address of this machine and SHOP_PORT to a free port")


async def serve(shop: Shop, sock: socket.socket, *,
                on_started: Callable[[Shop], None]) -> None:
    """Start ``shop`` (:class:`CouldNotStart` if it cannot), call ``on_started``, and serve
    its API on ``sock`` until interrupted; then stop the shop."""
    try:
        await shop.__aenter__()
    except BrokerError as exc:
        raise CouldNotStart(f"{exc}; check INVARIANT_BROKER and INVARIANT_BROKER_URL") from exc
    except (InvariantError, OSError) as exc:
        raise CouldNotStart(str(exc)) from exc
    try:
        on_started(shop)
        config = uvicorn.Config(create_app(shop, manage=False), log_level="warning")
        await uvicorn.Server(config).serve(sockets=[sock])
    finally:
        await shop.__aexit__(None, None, None)
