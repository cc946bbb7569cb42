"""Tracing as the standard ``OTEL_*`` environment variables describe it.

On when ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``, ``console``) or an OTLP
endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``);
off when ``OTEL_SDK_DISABLED=true``, ``OTEL_TRACES_EXPORTER=none`` or nothing is set. The
SDK reads the rest from the process' environment: ``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_TRACES_SAMPLER``, the exporter's headers and timeout; the endpoint and
``OTEL_SERVICE_NAME`` are taken from the mapping given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from invariant.domain.errors import ConfigurationError
from invariant.telemetry import tracing

EXPORTERS = ("otlp", "console", "none")


def exporters_wanted(environ: Mapping[str, str]) -> list[str]:
    """The exporters ``environ`` asks for (empty: tracing stays off)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    named = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",")
             if n.strip()]
    unknown = [n for n in named if n not in EXPORTERS]
    if unknown:
        raise ConfigurationError(
            f"OTEL_TRACES_EXPORTER={environ['OTEL_TRACES_EXPORTER']!r}: unknown exporter "
            f"{', '.join(unknown)}; use otlp, console or none")
    if not named and (environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                      or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        named = ["otlp"]
    return [n for n in named if n != "none"]


def configure_tracing(environ: Mapping[str, str]) -> Any | None:
    """Switch tracing on as ``environ`` asks (see the module docstring): a tracer provider
    with a batching processor per exporter, also made OpenTelemetry's global one (so the
    FastAPI instrumentation and other libraries use it). The provider, or None when off
    (then nothing is imported and nothing changes)."""
    wanted = exporters_wanted(environ)
    if not wanted:
        return None
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise ConfigurationError(
            "OTEL_TRACES_EXPORTER or an OTLP endpoint is set but the OpenTelemetry SDK is not "
            "installed: install opentelemetry-sdk, or unset them") from exc
    provider = TracerProvider(resource=Resource.create({"service.name": environ.get(
        "OTEL_SERVICE_NAME", "invariant")}))
    for name in wanted:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name, environ)))
    trace.set_tracer_provider(provider)
    tracing.use_tracer_provider(provider)
    return provider


def traces_endpoint(environ: Mapping[str, str]) -> str | None:
    """Where OTLP/HTTP sends spans: ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` as it is, else
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` + ``/v1/traces`` (None: the exporter's default,
    ``http://localhost:4318/v1/traces``)."""
    exact = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if exact:
        return exact
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    return f"{base.rstrip('/')}/v1/traces" if base else None


def _exporter(name: str, environ: Mapping[str, str]) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise ConfigurationError(
            "the OTLP exporter is not installed: pip install 'invariant[otlp]' (or "
            "opentelemetry-exporter-otlp-proto-http), or set OTEL_TRACES_EXPORTER=console"
        ) from exc
    return OTLPSpanExporter(endpoint=traces_endpoint(environ))
