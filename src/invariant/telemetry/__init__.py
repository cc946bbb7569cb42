"""Seeing a running application: OpenTelemetry traces, Prometheus metrics, JSON logs.

* :mod:`~invariant.telemetry.tracing`: the spans invariant opens (commands, event store
  commits, projection pages, the relay's publish, consuming, jobs) and the W3C trace context
  that travels in event metadata and message headers; on through :func:`configure_tracing`
  (the ``OTEL_*`` variables) or :func:`use_tracer_provider`.
* :mod:`~invariant.telemetry.metrics` and :mod:`~invariant.telemetry.endpoint`: what is
  counted, and ``/metrics``; :mod:`~invariant.telemetry.figures`: what is read on scrape.
* :mod:`~invariant.telemetry.logs`: ``INVARIANT_LOG_FORMAT=json``.

Every part works without the ``opentelemetry`` packages: its hooks then do nothing.
"""

from invariant.telemetry.correlation import correlated, correlation_id
from invariant.telemetry.logs import JsonFormatter, configure_logging
from invariant.telemetry.setup import configure_tracing
from invariant.telemetry.tracing import (
    enabled,
    inject,
    span,
    traced,
    tracer_provider,
    use_tracer_provider,
)

__all__ = [
    "JsonFormatter",
    "configure_logging",
    "configure_tracing",
    "correlated",
    "correlation_id",
    "enabled",
    "inject",
    "span",
    "traced",
    "tracer_provider",
    "use_tracer_provider",
]
