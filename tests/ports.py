"""A free local TCP port for a server a test starts (uvicorn, Tansu, a closed port to
refuse connections).

A port the kernel hands out for ``bind(("127.0.0.1", 0))`` comes from its range of
ephemeral ports, the range every outgoing connection of every process on the machine also
takes its local port from. Between the probe closing it and the server binding it, a
connection to PostgreSQL or NATS from another test worker could take that port: the
server then fails with "address already in use" (seen in CI). So the port is chosen
outside that range, where no outgoing connection is given one, and checked free.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOWEST = 20_000
"""Below this: the ports of the services the tests use, and of make run's defaults."""
_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LINUX_DEFAULT = (32_768, 60_999)
_TRIES = 200


def _ephemeral() -> tuple[int, int]:
    try:
        low, high = _RANGE.read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return _LINUX_DEFAULT


def free_port() -> int:
    """A port nothing on 127.0.0.1 listens on or is bound to, outside the ephemeral range."""
    low, high = _ephemeral()
    candidates = [*range(LOWEST, low), *range(high + 1, 65_536)]
    for port in random.sample(candidates, min(_TRIES, len(candidates))):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port outside the ephemeral range {low}-{high} in "
                       f"{_TRIES} tries")
