"""A request is a flow named by its correlation id: the caller's when it sends a sane one,
a new one otherwise; sent back on the response and carried by what the request does."""

from __future__ import annotations

import httpx2 as httpx
import pytest
from fastapi import FastAPI

from invariant.http.correlation import HEADER, CorrelationIds
from invariant.telemetry import correlation_id


def app() -> FastAPI:
    served = FastAPI()
    served.add_middleware(CorrelationIds)

    @served.get("/flow")
    async def flow() -> dict[str, str | None]:
        return {"seen": correlation_id()}

    return served


async def ask(headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app()),
                                 base_url="http://test") as client:
        return await client.get("/flow", headers=headers)


async def test_the_caller_s_id_names_the_flow_and_comes_back() -> None:
    answer = await ask({HEADER: "order-42:attempt.1"})
    assert answer.json() == {"seen": "order-42:attempt.1"}
    assert answer.headers[HEADER] == "order-42:attempt.1"


@pytest.mark.parametrize("given", ["", "has spaces", "x" * 129, "new\u00e9line", "a/b"])
async def test_a_missing_or_strange_id_is_replaced_by_a_new_one(given: str) -> None:
    answer = await ask({HEADER: given} if given.isascii() else {})
    seen = answer.json()["seen"]
    assert seen != given and len(seen) == 32
    assert answer.headers[HEADER] == seen
    assert correlation_id() is None  # the flow ended with the request
