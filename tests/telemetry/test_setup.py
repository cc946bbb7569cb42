"""Tracing from the standard ``OTEL_*`` variables: off unless an exporter or an endpoint is
named, and spans really reach an OTLP/HTTP collector (a small HTTP server here)."""

from __future__ import annotations

import http.server
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from invariant.domain.errors import ConfigurationError
from invariant.telemetry.setup import exporters_wanted, traces_endpoint


@pytest.mark.parametrize(("environ", "wanted"), [
    ({}, []),
    ({"OTEL_TRACES_EXPORTER": "none"}, []),
    ({"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
    ({"OTEL_TRACES_EXPORTER": "otlp, console"}, ["otlp", "console"]),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ["otlp"]),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, ["otlp"]),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, []),
    ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, []),
])
def test_tracing_is_on_only_when_asked(environ: dict[str, str], wanted: list[str]) -> None:
    assert exporters_wanted(environ) == wanted


def test_an_unknown_exporter_is_named() -> None:
    with pytest.raises(ConfigurationError, match="unknown exporter zipkin; use otlp"):
        exporters_wanted({"OTEL_TRACES_EXPORTER": "otlp,zipkin"})


def test_the_traces_endpoint() -> None:
    assert traces_endpoint({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}) == (
        "http://c:4318/v1/traces")
    assert traces_endpoint({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
                            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t/x"}) == "http://t/x"
    assert traces_endpoint({}) is None


class _Collector(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, str, int]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.received.append((self.path, self.headers.get("Content-Type", ""), len(body)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Collector.received.clear()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_spans_reach_an_otlp_collector(collector: str) -> None:
    script = textwrap.dedent(f"""
        from invariant.telemetry import configure_tracing, span
        provider = configure_tracing({{"OTEL_EXPORTER_OTLP_ENDPOINT": {collector!r},
                                       "OTEL_SERVICE_NAME": "otlp-test"}})
        with span("sent to the collector"):
            pass
        assert provider.force_flush(10_000)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert [(path, kind) for path, kind, _ in _Collector.received] == [
        ("/v1/traces", "application/x-protobuf")]
    assert _Collector.received[0][2] > 0


def test_the_operator_command_reads_the_telemetry_settings() -> None:
    done = subprocess.run([str(Path(sys.executable).parent / "invariant"), "relay", "lag"],
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "OTEL_TRACES_EXPORTER": "zipkin"})
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: OTEL_TRACES_EXPORTER='zipkin': unknown exporter zipkin; use otlp, console or "
        "none"]
