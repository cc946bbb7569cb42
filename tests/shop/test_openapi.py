"""schemathesis against shop's OpenAPI document: generated requests to every operation,
valid ones and invalid ones, as an admin (who may call every route), must never get a 500
nor a response outside the document (undocumented status code, or a body that does not match
its schema). Run without schemathesis's pytest plugin: one test walks every operation and
reports all failures together."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from invariant.config import Settings
from shop.platform.http import create_app
from shop.platform.runtime import Shop
from tests.shop.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, shop_settings

EXAMPLES = 12


@pytest.fixture(scope="module")
def live_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A shop on SQLite served from a thread of its own; its URL and admin headers."""
    tmp: Path = tmp_path_factory.mktemp("openapi")
    config = shop_settings(tmp, Settings(store="sqlite", sqlite_path=tmp / "shop.db"))
    server = uvicorn.Server(uvicorn.Config(create_app(Shop(config)), host=config.host,
                                           port=config.port, log_level="warning"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the shop did not start")
        time.sleep(0.05)
    base = f"http://{config.host}:{config.port}"
    token = httpx.post(f"{base}/identity/login",
                       json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).json()
    try:
        yield base, {"Authorization": f"Bearer {token['access_token']}"}
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_no_server_errors_and_no_responses_outside_the_document(
        live_shop: tuple[str, dict[str, str]]) -> None:
    base, admin = live_shop
    api = schemathesis.openapi.from_url(f"{base}/openapi.json")
    checks = [not_a_server_error, response_schema_conformance, status_code_conformance]
    failures: list[str] = []
    operations = 0
    for result in api.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            def call(case: Any) -> None:
                case.call_and_validate(base_url=base, headers=admin, checks=checks)

            try:
                call()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing to get wrong (no input)
            except Exception as exc:
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert operations >= 20, f"only {operations} operations in the document"
    assert not failures, "\n\n".join(failures)
