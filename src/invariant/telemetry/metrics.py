"""invariant's Prometheus instruments: what is counted as it happens (commands, events
appended, broker reconnects). Figures that are a state of the database (projection lag,
outbox backlog, dead letters, jobs) are read on scrape instead, by a collector
(:mod:`invariant.telemetry.figures`).

Like OpenTelemetry's provider, Prometheus' registry is one per process: the hooks count here
and ``/metrics`` (:mod:`invariant.telemetry.endpoint`) reads :data:`REGISTRY`. Counting is
off until :func:`enable_metrics` (an application that serves ``/metrics`` calls it), so an
application without metrics pays one attribute read per hook.
"""

from __future__ import annotations

from typing import Any

try:  # prometheus-client is optional: without it metrics cannot be switched on
    from prometheus_client import CollectorRegistry, Counter, Histogram
except ImportError:  # pragma: no cover - exercised by tests/telemetry/test_without_otel.py
    CollectorRegistry = None  # type: ignore[assignment,misc]

INSTALLED = CollectorRegistry is not None
PREFIX = "invariant_"

_on = False
REGISTRY: Any = None
_commands: Any = None
_command_seconds: Any = None
_events: Any = None
_reconnects: Any = None


def enable_metrics() -> Any:
    """Start counting; the registry ``/metrics`` serves (created once per process)."""
    global _on, REGISTRY, _commands, _command_seconds, _events, _reconnects
    if CollectorRegistry is None:
        from invariant.domain.errors import ConfigurationError

        raise ConfigurationError("metrics need prometheus-client: install it (invariant's "
                                 "`otel` dependencies)")
    if REGISTRY is None:
        REGISTRY = CollectorRegistry()
        _commands = Counter(f"{PREFIX}commands", "Commands handled, by type and outcome "
                            "(ok, duplicate, error)", ["command", "outcome"], registry=REGISTRY)
        _command_seconds = Histogram(f"{PREFIX}command_duration_seconds",
                                     "Time to handle a command, by type", ["command"],
                                     registry=REGISTRY)
        _events = Counter(f"{PREFIX}events_appended", "Events appended to the event store",
                          registry=REGISTRY)
        _reconnects = Counter(f"{PREFIX}broker_reconnects", "Times a broker answered again "
                              "after failing, by broker", ["broker"], registry=REGISTRY)
    _on = True
    return REGISTRY


def disable_metrics() -> None:
    """Stop counting (the registry and its figures stay)."""
    global _on
    _on = False


def enabled() -> bool:
    """Whether the hooks count now."""
    return _on


def command_handled(kind: str, outcome: str, seconds: float) -> None:
    """One command of type ``kind`` finished with ``outcome`` after ``seconds``."""
    if _on:
        _commands.labels(kind, outcome).inc()
        _command_seconds.labels(kind).observe(seconds)


def events_appended(count: int) -> None:
    """``count`` events were committed to the event store."""
    if _on and count:
        _events.inc(count)


def broker_reconnected(broker: str) -> None:
    """``broker`` answered again after a failure."""
    if _on:
        _reconnects.labels(broker).inc()
