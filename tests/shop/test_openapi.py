"""schemathesis against shop's OpenAPI document: generated requests to every operation, as
an admin (who may call every route), valid ones and invalid ones, from schemathesis's
coverage phase (boundary values, each constraint broken in turn, undocumented methods) and
its fuzzing phase. Every response must be documented (status and body), never a 500; valid
requests must be accepted and invalid ones refused (positive_data_acceptance and
negative_data_rejection): the server reads requests exactly as the document says.

One allowance: a schema-valid request may be refused by a business rule (422 with the
``business-rule`` problem type: a wrong code, an empty cart), which no schema can express;
a ``validation`` refusal of schema-valid data is a failure.

Run without schemathesis's pytest plugin: one test walks every operation and reports all
failures together. The coverage cases come from schemathesis's own generator (the one its
runner uses; the version is pinned)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.drivers import CoverageGenerator
from schemathesis.generation.feedback import FeedbackSources
from schemathesis.generation.overrides import Override
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from invariant.config import Settings
from shop.platform.http import create_app
from shop.platform.runtime import Shop
from tests.shop.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, shop_settings

EXAMPLES = 12
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
BUSINESS_RULE = "urn:invariant:problem:business-rule"
REFUSALS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428",
            "429", "5xx"]
"""How invalid data may be refused: schemathesis's list, and 413 (the body cap)."""


@pytest.fixture(scope="module")
def live_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A shop on SQLite served from a thread of its own; its URL and an admin token."""
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
        yield base, token["access_token"]
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def accepted_unless_a_business_rule_refused(ctx: Any, response: Any, case: Any
                                            ) -> bool | None:
    """positive_data_acceptance, but for refusals by a business rule."""
    if response.status_code == 422 and _problem_type(response) == BUSINESS_RULE:
        return None
    return positive_data_acceptance(ctx, response, case)


def _problem_type(response: Any) -> object:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("type") if isinstance(body, dict) else None


CHECKS: list[Callable[..., bool | None]] = [
    not_a_server_error, status_code_conformance, response_schema_conformance,
    accepted_unless_a_business_rule_refused, negative_data_rejection, unsupported_method]


def test_the_server_reads_requests_exactly_as_the_document_says(
        live_shop: tuple[str, str]) -> None:
    base, token = live_shop
    # As a bearer scheme of the document: a negative case that drops the token stays
    # without one (an Authorization header added to every call would put it back).
    config = SchemathesisConfig.from_dict({
        "auth": {"openapi": {"HTTPBearer": {"bearer": token}}},
        # a string past a maxLength of 100,000 is past the body cap too: 413 refuses it
        "checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}}})
    api = schemathesis.openapi.from_url(f"{base}/openapi.json", config=config)
    failures: list[str] = []
    operations = 0
    for result in api.get_all_operations():
        operation = result.ok()
        operations += 1
        failures += _coverage(api, operation, base)
        failures += _fuzzing(operation, base)
    assert operations >= 20, f"only {operations} operations in the document"
    assert not failures, "\n\n".join(failures)


def _coverage(api: Any, operation: Any, base: str) -> list[str]:
    """Boundary values, each constraint broken in turn, and undocumented methods."""
    cases = CoverageGenerator(
        operation=operation, generation_modes=MODES,
        generation_config=api.config.generation_for(operation=operation, phase="coverage"),
        auth_storage=None, override=Override(), feedback=FeedbackSources())
    failures: list[str] = []
    for case in cases:
        try:
            case.call_and_validate(base_url=base, checks=CHECKS)
        except FailureGroup as exc:
            failures.append(f"{operation.label} (coverage): {exc}")
    return failures


def _fuzzing(operation: Any, base: str) -> list[str]:
    failures: list[str] = []
    for mode in MODES:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def call(case: Any) -> None:
            case.call_and_validate(base_url=base, checks=CHECKS)

        try:
            call()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing to get wrong (no input)
        except FailureGroup as exc:
            failures.append(f"{operation.label} ({mode.value}): {exc}")
    return failures
