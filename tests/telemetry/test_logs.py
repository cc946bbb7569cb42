"""``INVARIANT_LOG_FORMAT=json``: one JSON object per line, with the trace, span and
correlation ids of the flow that wrote it, and no password, code or payload, however a
caller tries to log one."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from invariant.config import Settings
from invariant.domain.errors import ConfigurationError
from invariant.telemetry import configure_logging, correlated, span
from tests.shop.conftest import serve, shop_settings

PASSWORD = "Tr0ub4dor&3-hunter2"
CODE = "482913"


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """The root logger writing JSON lines (DEBUG and up) into the returned buffer."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    out = io.StringIO()
    configure_logging({"INVARIANT_LOG_FORMAT": "json"}, level=logging.DEBUG, stream=out)
    try:
        yield out
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


def _records(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_each_record_is_one_json_line_with_the_flow_s_ids(
        json_lines: io.StringIO, spans: InMemorySpanExporter) -> None:
    log = logging.getLogger("shop.test")
    with span("handling"), correlated({"correlation_id": "c-42"}):
        log.info("order %s placed", "o-1")
    log.warning("outside any flow")
    inside, outside = _records(json_lines)
    recorded = spans.get_finished_spans()[0].context
    assert inside["message"] == "order o-1 placed"
    assert inside["level"] == "info" and inside["logger"] == "shop.test"
    assert inside["trace_id"] == f"{recorded.trace_id:032x}"
    assert inside["span_id"] == f"{recorded.span_id:016x}"
    assert inside["correlation_id"] == "c-42"
    assert "trace_id" not in outside and "correlation_id" not in outside


def test_a_password_a_code_and_a_payload_never_reach_the_log(json_lines: io.StringIO
                                                             ) -> None:
    log = logging.getLogger("shop.careless")
    log.info("login with password %s", PASSWORD)
    log.info("password=%s", PASSWORD)
    log.info('body {"email": "a@b.c", "password": "%s"}', PASSWORD)
    log.info("your one-time code is %s", CODE)
    log.info("verify code: %s", CODE)
    log.info("payload %s", {"password": PASSWORD, "code": CODE})
    log.info("payload %(body)s", {"body": {"password": PASSWORD}})
    log.info("args %s", [PASSWORD, CODE])
    log.info("extra", extra={"password": PASSWORD, "payload": {"code": CODE}})
    log.info("Authorization: Bearer %s", PASSWORD)
    try:
        raise ValueError(f"refused: password {PASSWORD} and code {CODE}")
    except ValueError:
        log.exception("a handler failed")
    text = json_lines.getvalue()
    assert len(_records(json_lines)) == 11
    assert PASSWORD not in text and CODE not in text
    assert "hunter2" not in text


async def test_a_customer_signing_up_leaks_neither_password_nor_code(
        json_lines: io.StringIO, spans: InMemorySpanExporter, tmp_path: Path) -> None:
    settings = shop_settings(tmp_path, Settings(store="sqlite",
                                                sqlite_path=tmp_path / "shop.db"))
    async with serve(settings) as server:
        code = await server.register("leaky@shop.test", PASSWORD)
        wrong = await server.client.post("/identity/login", json={
            "email": "leaky@shop.test", "password": PASSWORD + "x"})
        assert wrong.status_code in (401, 403), wrong.text
        verified = await server.client.post("/identity/verify", json={
            "email": "leaky@shop.test", "code": code})
        assert verified.status_code == 200, verified.text
        await server.login("leaky@shop.test", PASSWORD)
    records = _records(json_lines)
    text = json_lines.getvalue()
    assert PASSWORD not in text and code not in text
    commands = [r for r in records if r["logger"] == "invariant.commands"]
    assert commands, "no command was logged"
    assert all("correlation_id" in r and "trace_id" in r for r in commands)


def test_the_format_is_checked_and_known_to_the_settings() -> None:
    with pytest.raises(ConfigurationError, match="INVARIANT_LOG_FORMAT='xml'"):
        configure_logging({"INVARIANT_LOG_FORMAT": "xml"})
    assert configure_logging({}) is None
    Settings.from_env({"INVARIANT_LOG_FORMAT": "json"})
