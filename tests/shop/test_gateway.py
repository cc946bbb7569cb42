"""The gateway in front of the contexts' services, over real HTTP: the same OpenAPI and
answers as the single process, tokens checked at the edge, correlation ids passed on, and a
service that is down answered with a quick 503 until it is back."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest
import uvicorn

from invariant.config import Settings
from invariant.http import ServiceClient
from invariant.resilience import BreakerState, CallPolicy
from invariant.retry import RetryPolicy
from shop.gateway import create_gateway
from shop.gateway.routes import PublishedApi
from shop.platform.auth import Tokens
from shop.platform.http import create_app, served
from tests.resilience.toy_service import ToyService
from tests.shop.conftest import (
    PROBLEM,
    SECRET,
    ShopServer,
    free_port,
    serve,
    shop_settings,
)
from tests.shop.shopping import place

POLICY = CallPolicy(timeout=5.0, retry=RetryPolicy(attempts=2, first_delay=0.01,
                                                   max_delay=0.02, jitter=0.01),
                    failures_to_open=2, open_for=0.5)


class Door:
    """A second HTTP server for the same running shop, on a port of its own: the catalog
    "service", stopped and started again by a test."""

    def __init__(self, upstream: ShopServer) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._app = create_app(upstream.shop, manage=False)
        self._serving = contextlib.AsyncExitStack()

    async def open(self) -> None:
        config = uvicorn.Config(self._app, host="127.0.0.1", port=self.port,
                                log_level="error", lifespan="off")
        await self._serving.enter_async_context(served(config))

    async def close(self) -> None:
        await self._serving.aclose()


@dataclass
class Deployment:
    upstream: ShopServer
    through: ShopServer
    """The same shop, every request sent through the gateway."""
    services: dict[str, ServiceClient]
    catalog: Door
    toy: ToyService
    """Answers for inventory: records what the gateway sent it."""


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    settings = shop_settings(tmp_path, Settings(store="sqlite", sqlite_path=tmp_path / "s.db"))
    api = PublishedApi.of_shop()
    toy = ToyService()
    async with serve(settings) as upstream, contextlib.AsyncExitStack() as stack:
        await toy.start()
        stack.push_async_callback(toy.stop)
        catalog = Door(upstream)
        await catalog.open()
        stack.push_async_callback(catalog.close)
        urls = {context: upstream.base_url for context in api.contexts}
        urls.update(catalog=catalog.url, inventory=toy.url)
        services = {c: ServiceClient(c, url, POLICY) for c, url in urls.items()}
        app = create_gateway(api, services, Tokens(SECRET, 3600), max_body=settings.max_body)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                lifespan="on")
        async with served(config), httpx.AsyncClient(base_url=base, timeout=30) as client:
            through = ShopServer(upstream.shop, base, client, upstream.mail_dir)
            yield Deployment(upstream, through, services, catalog, toy)


async def test_the_gateway_serves_the_single_process_s_openapi(deployment: Deployment) -> None:
    direct = await deployment.upstream.client.get("/openapi.json")
    gateway = await deployment.through.client.get("/openapi.json")
    assert gateway.status_code == 200
    assert gateway.json() == direct.json()
    assert (await deployment.through.client.get("/docs")).status_code == 200


async def test_a_customer_signs_up_and_orders_through_the_gateway(
        deployment: Deployment) -> None:
    through = deployment.through
    headers = await through.customer("gus@shop.test")
    me = await through.client.get("/identity/me", headers=headers)
    assert me.status_code == 200
    assert me.json()["email"] == "gus@shop.test"
    products = (await through.client.get("/catalog/products")).json()["items"]
    order_id = await place(through, headers, (products[0]["id"], 1))
    order = await through.client.get(f"/orders/{order_id}", headers=headers)
    assert order.json()["status"] in ("placed", "shipped", "cancelled")


async def test_refusals_read_as_the_single_process_s(deployment: Deployment) -> None:
    for method, path in [("DELETE", "/catalog/products"), ("GET", "/no/such/path"),
                         ("POST", "/identity/login")]:
        direct = await deployment.upstream.client.request(method, path, json={})
        gateway = await deployment.through.client.request(method, path, json={})
        assert (gateway.status_code, gateway.json()) == (direct.status_code, direct.json())
        assert gateway.headers["content-type"] == PROBLEM
        assert gateway.headers.get("allow") == direct.headers.get("allow")


async def test_a_forged_or_missing_token_is_refused_at_the_edge(deployment: Deployment) -> None:
    forged = Tokens("another-secret-0123456789-abcdefghijklmn", 3600).issue("u-1", 1)
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing there: never reached
    deployment.services["ordering"] = ServiceClient("ordering", nowhere, POLICY)
    for headers in ({}, {"Authorization": f"Bearer {forged}"}, {"Authorization": "Basic x"}):
        response = await deployment.through.client.get("/orders", headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["content-type"] == PROBLEM


async def test_the_correlation_id_is_passed_on_and_returned(deployment: Deployment) -> None:
    response = await deployment.through.client.get(
        "/inventory/p-1?x=1", headers={"X-Correlation-ID": "req-42", "X-Shop-Service": "x"})
    assert response.status_code == 200
    assert response.headers["x-correlation-id"] == "req-42"
    assert deployment.toy.last_headers["x-correlation-id"] == "req-42"
    assert deployment.toy.last_headers["x-forwarded-for"] == "127.0.0.1"
    assert "x-shop-service" not in deployment.toy.last_headers
    made = await deployment.through.client.get(
        "/inventory/p-1", headers=[(b"X-Correlation-ID", b"bad id\xe9"), (b"X-Note", b"\xe9")])
    assert made.status_code == 200
    assert made.headers["x-correlation-id"] != "bad id\xe9"
    assert deployment.toy.last_headers["x-note"] == "\xe9"  # passed on as it came
    assert deployment.toy.last_headers["x-correlation-id"] == made.headers["x-correlation-id"]


async def test_a_failing_service_is_a_503_and_a_post_is_not_repeated(
        deployment: Deployment) -> None:
    deployment.toy.statuses = [500]
    deployment.services["ordering"] = ServiceClient("ordering", deployment.toy.url, POLICY)
    response = await deployment.through.client.post(
        "/orders", headers=await deployment.through.admin())
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    assert int(response.headers["retry-after"]) >= 1
    assert "ordering is unavailable: it answered 500" in response.json()["detail"]
    assert deployment.toy.requests == 1


async def test_an_idempotent_write_is_tried_again(deployment: Deployment) -> None:
    deployment.toy.statuses = [502]
    response = await deployment.through.client.put(
        "/admin/inventory/p-1", json={"on_hand": 1}, headers=await deployment.through.admin())
    assert response.status_code == 200
    assert deployment.toy.requests == 2


async def test_catalog_stopped_is_a_quick_503_then_works_again_once_back(
        deployment: Deployment) -> None:
    client, breaker = deployment.through.client, deployment.services["catalog"].caller.breaker
    assert (await client.get("/catalog/products")).status_code == 200
    await deployment.catalog.close()

    first = await client.get("/catalog/products")
    assert first.status_code == 503
    assert first.headers["content-type"] == PROBLEM
    assert "cannot be reached" in first.json()["detail"]
    assert breaker.state is BreakerState.OPEN
    refused = await client.get("/catalog/products/p-1")
    assert refused.status_code == 503
    assert "circuit open" in refused.json()["detail"]
    assert 1 <= int(refused.headers["retry-after"]) <= 1  # open_for 0.5 s, in whole seconds
    assert (await client.get("/identity/verification-code")).status_code == 405  # others answer

    await deployment.catalog.open()
    await asyncio.sleep(POLICY.open_for)
    assert (await client.get("/catalog/products")).status_code == 200
    assert breaker.state is BreakerState.CLOSED
    assert list(breaker.history)[-3:] == [BreakerState.OPEN, BreakerState.HALF_OPEN,
                                          BreakerState.CLOSED]


async def test_ready_names_a_service_that_is_down(deployment: Deployment) -> None:
    await deployment.catalog.close()
    response = await deployment.through.client.get("/ready")
    assert response.status_code == 503
    reasons = response.json()["reasons"]
    assert any(reason.startswith("catalog: catalog is unavailable") for reason in reasons)
    assert "inventory: its /ready answer is not a readiness report" in reasons  # the toy
    assert not any(reason.startswith("identity") for reason in reasons)
    assert (await deployment.through.client.get("/health")).json() == {"status": "ok"}


ALL_URLS = {f"SHOP_SERVICE_{c.upper()}_URL": "http://127.0.0.1:1" for c in (
    "identity", "catalog", "inventory", "ordering", "payments", "shipping", "billing",
    "analytics")}


@pytest.mark.parametrize(("env", "message"), [
    ({}, "SHOP_SERVICE_ANALYTICS_URL is not set"),
    ({**ALL_URLS, "SHOP_SERVICE_CATALOG_URL": "catalog:8101"},
     "SHOP_SERVICE_CATALOG_URL: the URL of catalog must be an absolute http"),
    ({**ALL_URLS, "SHOP_SERVICE_CATLOG_URL": "http://127.0.0.1:1"},
     "unknown setting(s) SHOP_SERVICE_CATLOG_URL"),
    ({**ALL_URLS, "SHOP_SERVICE_ORDERING_URL": "http://127.0.0.1:1, ordering-2:8102"},
     "SHOP_SERVICE_ORDERING_URL: the URL of ordering must be an absolute http"),
    ({**ALL_URLS, "SHOP_SERVICE_ORDERING_URL": " , "},
     "SHOP_SERVICE_ORDERING_URL is not set"),
])
def test_a_missing_or_wrong_service_url_stops_the_gateway_naming_it(
        env: dict[str, str], message: str, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "shop", "gateway"],
                          env={"PATH": "/usr/bin:/bin", "SHOP_DATA": str(tmp_path), **env},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


async def test_a_service_that_never_answers_is_a_503_not_a_hang(
        deployment: Deployment) -> None:
    deployment.toy.hold = asyncio.Event()
    deployment.services["inventory"] = ServiceClient(
        "inventory", deployment.toy.url,
        CallPolicy(timeout=0.3, retry=RetryPolicy(attempts=1), failures_to_open=1))
    response = await deployment.through.client.get("/inventory/p-1")
    assert response.status_code == 503
    assert "did not answer within 0.3 s" in response.json()["detail"]
    assert deployment.toy.requests == 1


async def test_a_post_without_an_answer_in_time_is_a_504_not_a_retry(
        deployment: Deployment) -> None:
    # The service may have done it (placed the order): a 503 with Retry-After would have
    # the client send it again.
    deployment.toy.hold = asyncio.Event()
    slow = CallPolicy(timeout=0.3, retry=RetryPolicy(attempts=1), failures_to_open=5)
    for context in ("inventory", "ordering"):  # both answered by the toy, which holds
        deployment.services[context] = ServiceClient(context, deployment.toy.url, slow)
    admin = await deployment.through.admin()
    response = await deployment.through.client.put(  # a PUT may be sent again: 503
        "/admin/inventory/p-1", headers=admin, json={"on_hand": 3})
    assert response.status_code == 503 and response.headers["Retry-After"]
    response = await deployment.through.client.post("/orders", headers=admin)
    assert response.status_code == 504, response.text
    assert "Retry-After" not in response.headers
    assert response.json()["type"] == "urn:invariant:problem:outcome-unknown"
    assert "may have been carried out" in response.json()["detail"]


async def test_a_body_over_the_cap_is_refused_at_the_edge(deployment: Deployment) -> None:
    response = await deployment.through.client.put(
        "/admin/inventory/p-1", content=b"x" * (deployment.upstream.shop.settings.max_body + 1),
        headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
    assert deployment.toy.requests == 0


def test_the_gateway_runs_as_its_own_process_in_front_of_a_shop(tmp_path: Path) -> None:
    shop_port, gateway_port = free_port(), free_port()
    base = {"PATH": "/usr/bin:/bin", "SHOP_SECRET": SECRET, "SHOP_DATA": str(tmp_path)}
    env_shop = {**base, "SHOP_PORT": str(shop_port), "SHOP_SMTP_PORT": str(free_port()),
                "INVARIANT_SQLITE_PATH": str(tmp_path / "shop.db")}
    env_gateway = {**base, "SHOP_PORT": str(gateway_port),
                   **{k: f"http://127.0.0.1:{shop_port}" for k in ALL_URLS}}
    with subprocess.Popen([sys.executable, "-m", "shop"], env=env_shop,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as shop, \
            subprocess.Popen([sys.executable, "-m", "shop", "gateway"], env=env_gateway,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as gateway:
        try:
            ready = _poll(f"http://127.0.0.1:{gateway_port}/ready", gateway)
            assert ready.status_code == 200, ready.text
            products = httpx.get(f"http://127.0.0.1:{gateway_port}/catalog/products")
            assert products.status_code == 200
            assert products.json()["total"] > 0
        finally:
            for process in (gateway, shop):
                process.terminate()
                process.wait(timeout=30)


def _poll(url: str, process: subprocess.Popen[bytes]) -> httpx.Response:
    """``url``'s answer once it answers 200 (at most 60 s: a start-up ceiling)."""
    import time

    deadline = time.monotonic() + 60
    last: httpx.Response | None = None
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        with contextlib.suppress(httpx.TransportError):
            last = httpx.get(url, timeout=5)
            if last.status_code == 200:
                return last
        time.sleep(0.2)
    raise AssertionError(f"{url} did not become ready: {last and last.text}")


def test_a_context_run_twice_is_named_by_both_urls() -> None:
    from shop.platform.registry import service_urls

    urls = service_urls({"SHOP_SERVICE_ORDERING_URL": "http://a:1, http://b:2"},
                        ["ordering"], ["ordering"])
    assert urls == {"ordering": ["http://a:1", "http://b:2"]}
