"""HTTP requests as spans: OpenTelemetry's FastAPI instrumentation on invariant's tracer
provider, so a request's span is the parent of the commands it sends."""

from __future__ import annotations

from typing import Any

from invariant.telemetry import tracing


def instrument(app: Any) -> bool:
    """Trace every request of the FastAPI ``app`` while tracing is on (then True); the
    instrumentation is not imported otherwise. Call it once, when the app is made."""
    provider = tracing.tracer_provider()
    if provider is None:
        return False
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider,
                                       excluded_urls="/health,/ready,/metrics")
    return True
