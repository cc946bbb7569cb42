"""What the commands do alike: import what a setting names, and stop long-running work on
SIGINT/SIGTERM (or after a time)."""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import sys
from typing import Any

from invariant.domain.errors import ConfigurationError


def import_from_here() -> None:
    """Make the current directory's modules importable, as ``python -m`` does."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


def import_attribute(spec: str, option: str, shape: str) -> Any:
    """What ``package.module:attribute`` (``spec``, given as ``option``) names; a malformed
    or missing one raises :class:`ConfigurationError` naming ``option`` and the expected
    ``package.module:<shape>``."""
    import_from_here()
    module_name, _, attribute = spec.partition(":")
    if not attribute:
        raise ConfigurationError(f"{option} {spec!r}: expected package.module:{shape}")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"{option} {spec!r}: {exc}") from exc


def stop_event(seconds: float | None) -> asyncio.Event:
    """An event set by SIGINT or SIGTERM, or after ``seconds`` (call inside the loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if seconds is not None:
        loop.call_later(seconds, stop.set)
    return stop
