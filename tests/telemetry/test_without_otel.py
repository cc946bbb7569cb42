"""Without the OpenTelemetry SDK and prometheus-client (an installation without invariant's
``otel`` dependencies) invariant still runs: every telemetry hook does nothing, and asking
for tracing or metrics says what to install. The core runs without even the OpenTelemetry
API (FastAPI brings that one along)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def _blocking(*prefixes: str) -> str:
    return textwrap.dedent(f"""
        import importlib.abc, sys

        class Missing(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.startswith({prefixes!r}):
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, Missing())
    """)


CORE = textwrap.dedent("""
    import asyncio
    from dataclasses import dataclass

    from invariant import telemetry
    from invariant.application import Command
    from invariant.bootstrap import bootstrap
    from invariant.config import Settings
    from invariant.domain.errors import ConfigurationError
    from invariant.telemetry import metrics, tracing

    assert not metrics.INSTALLED

    @dataclass(frozen=True, kw_only=True)
    class Ping(Command):
        pass

    async def ping(command, uow):
        return "pong"

    async def main():
        app = bootstrap(Settings(store="memory"), events=[], command_handlers={Ping: ping})
        async with app:
            result = await app.commands.dispatch(Ping())
        assert result.value == "pong"
        carrier = {}
        telemetry.inject(carrier)
        assert carrier == {}
        with telemetry.span("nothing"):
            pass
        assert await telemetry.traced("nothing", asyncio.sleep(0, "done")) == "done"

    asyncio.run(main())
    assert telemetry.configure_tracing({}) is None
    for ask in (lambda: telemetry.configure_tracing({"OTEL_TRACES_EXPORTER": "console"}),
                metrics.enable_metrics):
        try:
            ask()
        except ConfigurationError as exc:
            print(exc)
        else:
            raise AssertionError("no error")
""")

WEB = textwrap.dedent("""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from invariant.telemetry.endpoint import metrics_router
    from invariant.telemetry.web import instrument

    web = FastAPI()
    web.include_router(metrics_router(lambda: None))
    assert not instrument(web)
    answer = TestClient(web).get("/metrics")
    assert answer.status_code == 501 and "prometheus-client" in answer.text, answer.text
""")


def _run(script: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.parametrize("missing", [("opentelemetry", "prometheus_client"), (
    "opentelemetry.sdk", "opentelemetry.instrumentation", "prometheus_client")])
def test_every_hook_is_a_no_op_and_switching_on_names_what_to_install(
        missing: tuple[str, ...]) -> None:
    lines = _run(_blocking(*missing) + CORE)
    assert len(lines) == 2
    assert "install opentelemetry-sdk" in lines[0]
    assert "prometheus-client" in lines[1]


def test_the_metrics_endpoint_says_what_to_install() -> None:
    _run(_blocking("opentelemetry.sdk", "opentelemetry.instrumentation", "prometheus_client")
         + WEB)
