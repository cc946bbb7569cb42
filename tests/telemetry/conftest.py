"""Tracing into the SDK's in-memory exporter, and metrics switched on, for one test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from invariant.telemetry import metrics, tracing
from tests.messaging.conftest import db  # noqa: F401 - fixtures the tests here use
from tests.shop.conftest import distributed  # noqa: F401


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Every span invariant (and the FastAPI instrumentation) records during the test."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_tracer_provider(provider)
    try:
        yield exporter
    finally:
        tracing.use_tracer_provider(None)
        provider.shutdown()


@pytest.fixture
def counting() -> Iterator[None]:
    """Metrics on for the test (the registry, once made, stays: compare before and after)."""
    was = metrics.enabled()
    metrics.enable_metrics()
    try:
        yield
    finally:
        if not was:
            metrics.disable_metrics()


def ancestry(span: ReadableSpan, finished: list[ReadableSpan]) -> list[ReadableSpan]:
    """``span`` and its parents up to the root, among ``finished`` (a missing parent ends
    the walk there)."""
    by_id = {s.context.span_id: s for s in finished}
    chain = [span]
    while chain[-1].parent is not None:
        parent = by_id.get(chain[-1].parent.span_id)
        if parent is None:
            break
        chain.append(parent)
    return chain
