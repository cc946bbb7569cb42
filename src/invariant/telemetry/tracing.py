"""Spans around invariant's work, through OpenTelemetry when it is installed and switched on.

OpenTelemetry's model is one tracer provider per process; the hooks in the event store, the
bus, the relay, the consumers and the job workers reach it here, as code reaches a logger,
so each place makes one call. While tracing is off (the default, or without the
``opentelemetry`` packages) :func:`span` hands back one shared empty context manager and
:func:`traced` awaits the work as it is: a read of one module attribute per hook.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

try:  # the OpenTelemetry API is optional: without it every hook is a no-op
    from opentelemetry import trace as _trace
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # pragma: no cover - exercised by tests/telemetry/test_without_otel.py
    _trace = None  # type: ignore[assignment]

T = TypeVar("T")

INSTALLED = _trace is not None
"""Whether the OpenTelemetry API can be imported (the ``opentelemetry-*`` packages)."""
TRACE_KEYS = ("traceparent", "tracestate")
"""The W3C trace context's fields, as they travel in event metadata and message headers."""

_NOTHING: contextlib.nullcontext[None] = contextlib.nullcontext()
_tracer: Any = None
_provider: Any = None
_KINDS: dict[str, Any] = {} if _trace is None else {
    "internal": SpanKind.INTERNAL, "producer": SpanKind.PRODUCER,
    "consumer": SpanKind.CONSUMER, "client": SpanKind.CLIENT, "server": SpanKind.SERVER}
_W3C: Any = None if _trace is None else TraceContextTextMapPropagator()


def use_tracer_provider(provider: Any | None) -> None:
    """Send invariant's spans to ``provider`` (an OpenTelemetry ``TracerProvider``); None
    switches tracing off. :func:`~invariant.telemetry.configure_tracing` calls it with
    the provider the ``OTEL_*`` variables describe; tests pass one with an in-memory
    exporter."""
    global _tracer, _provider
    if provider is not None and _trace is None:
        from invariant.domain.errors import ConfigurationError

        raise ConfigurationError("tracing needs the OpenTelemetry packages: install "
                                 "opentelemetry-sdk (invariant's `otel` dependencies)")
    _provider = provider
    _tracer = None if provider is None else provider.get_tracer("invariant")


def tracer_provider() -> Any | None:
    """The provider invariant's spans go to (None: tracing is off)."""
    return _provider


def enabled() -> bool:
    """Whether spans are recorded now."""
    return _tracer is not None


def span(name: str, attributes: Mapping[str, Any] | None = None, *, kind: str = "internal",
         parent: Mapping[str, Any] | None = None) -> contextlib.AbstractContextManager[Any]:
    """A span named ``name`` around a block, the current one's child, or the child of the
    W3C trace context in ``parent`` (event metadata, message headers) when it holds one.
    ``kind``: internal, producer, consumer, client or server."""
    tracer = _tracer
    if tracer is None:
        return _NOTHING
    opened: contextlib.AbstractContextManager[Any] = tracer.start_as_current_span(
        name, context=_context_of(parent), kind=_KINDS[kind], attributes=attributes)
    return opened


async def traced(name: str, work: Awaitable[T], attributes: Mapping[str, Any] | None = None,
                 *, kind: str = "internal", parent: Mapping[str, Any] | None = None) -> T:
    """Await ``work`` inside :func:`span` (the coroutine runs in the span's context)."""
    if _tracer is None:
        return await work
    with span(name, attributes, kind=kind, parent=parent):
        return await work


def inject(carrier: dict[str, Any]) -> None:
    """Write the current span's W3C trace context into ``carrier`` (event metadata, message
    headers); nothing while tracing is off or no span is open."""
    if _tracer is not None:
        _W3C.inject(carrier)


def set_attribute(key: str, value: Any) -> None:
    """Note ``key`` on the current span (known only once the work is done, e.g. the size of
    the commit batch a commit went in)."""
    if _tracer is not None:
        _trace.get_current_span().set_attribute(key, value)


def current_ids() -> tuple[str, str] | None:
    """The current span's trace and span ids in hex (None: no span is recording), for logs."""
    if _trace is None:
        return None
    context = _trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def start(name: str, attributes: Mapping[str, Any] | None = None, *, kind: str = "internal",
          parent: Mapping[str, Any] | None = None) -> Any:
    """A started span that is not made current (the caller ends it): one of many that cover
    the same work, e.g. each message of a batch published at once. Only while tracing is on."""
    return _tracer.start_span(name, context=_context_of(parent), kind=_KINDS[kind],
                              attributes=attributes)


def inject_span(carrier: dict[str, Any], started: Any) -> None:
    """Write the W3C trace context of ``started`` (see :func:`start`) into ``carrier``."""
    _W3C.inject(carrier, context=_trace.set_span_in_context(started))


def trace_context(carrier: Mapping[str, Any] | None) -> dict[str, str]:
    """The W3C fields of ``carrier`` that are text (a message from elsewhere may hold
    anything under these names: what is not text is left out, never an error)."""
    if not carrier:
        return {}
    return {key: value for key in TRACE_KEYS
            if isinstance(value := carrier.get(key), str)}


def _context_of(parent: Mapping[str, Any] | None) -> Any:
    fields = trace_context(parent)
    return _W3C.extract(fields) if "traceparent" in fields else None
