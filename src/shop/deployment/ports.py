"""Ports for a set started beside other work (tests, benchmarks): a run of consecutive
ports nothing listens on, below the kernel's ephemeral range, where the outgoing
connections of the set (and everyone else's) take ports that a service would then find in
use."""

from __future__ import annotations

import contextlib
import random
import socket
from pathlib import Path


def free_run(count: int) -> int:
    """The first of ``count`` consecutive ports that could all be bound now; OSError when
    none is found."""
    low, high = ephemeral_range()
    start, stop = (1024, low) if low - 1024 > 2000 else (high + 1, 65535)
    for _ in range(200):
        first = random.randrange(start, stop - count)
        if _bindable(range(first, first + count)):
            return first
    raise OSError(f"found no {count} consecutive free ports between {start} and {stop}")


def ephemeral_range() -> tuple[int, int]:
    """The ports the kernel hands out to outgoing connections."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def _bindable(ports: range) -> bool:
    """Every port of ``ports`` could be bound now (all held at once while trying)."""
    with contextlib.ExitStack() as held:
        for port in ports:
            s = held.enter_context(socket.socket())
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True
