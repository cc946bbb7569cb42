"""Another service checks access tokens against identity's service: the same answers as
identity's own directory, a call that only shop's services may make, and nothing of it in
the public API."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from invariant.config import Settings
from invariant.http import ServiceClient
from invariant.resilience import CallPolicy, DependencyFailedError
from shop.identity.remote import RemoteAccounts, RemoteSignIn
from shop.platform.errors import Forbidden, NotAuthenticated, TooManyRequests
from tests.shop.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    SECRET,
    ShopServer,
    free_port,
    serve,
    shop_settings,
)

POLICY = CallPolicy(timeout=2.0, failures_to_open=5)


@pytest.fixture
async def identity(tmp_path: Path) -> AsyncIterator[ShopServer]:
    settings = shop_settings(tmp_path, Settings(store="sqlite", sqlite_path=tmp_path / "i.db"))
    async with serve(settings) as running:
        yield running


async def test_the_remote_answer_is_identity_s_own(identity: ShopServer) -> None:
    headers = await identity.customer("ada@shop.test")
    me = (await identity.client.get("/identity/me", headers=headers)).json()
    directory = identity.shop.accounts
    assert directory is not None
    async with ServiceClient("identity", identity.base_url, POLICY) as client:
        remote = RemoteAccounts(client, SECRET)
        before = await remote.access(me["user_id"])
        assert before is not None
        assert before == await directory.access(me["user_id"])
        assert await remote.access("no-such-account") is None
        changed = await identity.client.post(
            "/identity/password", headers=headers,
            json={"current_password": "correct horse battery",
                  "new_password": "another horse battery"})
        assert changed.status_code == 200, changed.text
        assert await remote.access(me["user_id"]) == await directory.access(me["user_id"])
        after = await remote.access(me["user_id"])
        assert after is not None
        assert after.token_version == before.token_version + 1  # earlier tokens revoked


async def test_only_shop_s_services_may_ask(identity: ShopServer) -> None:
    admin = await identity.admin()
    me = (await identity.client.get("/identity/me", headers=admin)).json()
    path = f"/identity/accounts/{me['user_id']}/access"
    for headers in ({}, {"X-Shop-Service": "guess"}, admin):
        response = await identity.client.get(path, headers=headers)
        assert response.status_code == 401
    async with ServiceClient("identity", identity.base_url, POLICY) as client:
        with pytest.raises(DependencyFailedError, match="answered 401"):
            await RemoteAccounts(client, "another-secret-" + "x" * 32).access(me["user_id"])
    openapi = (await identity.client.get("/openapi.json")).json()
    assert not any("/access" in path for path in openapi["paths"])


async def test_identity_down_is_unavailable() -> None:
    async with ServiceClient("identity", f"http://127.0.0.1:{free_port()}", POLICY) as client:
        with pytest.raises(DependencyFailedError, match="cannot be reached"):
            await RemoteAccounts(client, SECRET).access("u-1")


async def test_another_service_s_console_logs_in_through_identity(identity: ShopServer) -> None:
    async with ServiceClient("identity", identity.base_url, POLICY) as client:
        sign_in = RemoteSignIn(client)
        token = await sign_in(ADMIN_EMAIL, ADMIN_PASSWORD, "203.0.113.7")
        assert identity.shop.tokens.verify(token).user_id  # identity's own token
        with pytest.raises(NotAuthenticated, match="the email or password is wrong"):
            await sign_in(ADMIN_EMAIL, "not the password", "203.0.113.7")
        await identity.register("new@shop.test", "correct horse battery")
        with pytest.raises(Forbidden, match="verif"):
            await sign_in("new@shop.test", "correct horse battery", "203.0.113.8")


async def test_guesses_are_counted_by_the_operator_s_address(identity: ShopServer) -> None:
    async with ServiceClient("identity", identity.base_url, POLICY) as client:
        sign_in = RemoteSignIn(client)

        async def guess_on() -> None:
            for _ in range(50):
                with contextlib.suppress(NotAuthenticated):
                    await sign_in(ADMIN_EMAIL, "wrong", "198.51.100.1")

        with pytest.raises(TooManyRequests):
            await guess_on()
        # Another address is not throttled by the first one's guesses.
        assert await sign_in(ADMIN_EMAIL, ADMIN_PASSWORD, "198.51.100.2")
