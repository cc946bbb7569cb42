"""identity over real HTTP (SQLite and PostgreSQL): sign-up, verification codes, log-in,
tokens, password changes, and the proof that secrets stay out of everything but the email.

These run a shop of identity and notifications only (the emails go through the real
outbox → broker → consumer → job → SMTP sink path), on a clock the tests move. The
password-guess throttle is proven in test_identity_defences.py, the checks of tokens
against accounts in test_identity_tokens.py."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, func, inspect, select, text

from invariant.config import Settings
from invariant.testing.clock import ManualClock
from shop.identity import wiring as identity
from shop.identity.infrastructure import accounts
from shop.notifications import wiring as notifications
from tests.shop.conftest import ADMIN_EMAIL, PROBLEM, ShopServer, eventually, serve, shop_settings

PASSWORD = "Tr0ub4dor&3-horse-staple"
MODULES = [identity.module, notifications.module]


@pytest.fixture
def server(identity_server: ShopServer) -> ShopServer:
    """Here: identity + notifications only, on each backend, on ``clock``."""
    return identity_server


async def register(server: ShopServer, email: str, password: str = PASSWORD) -> str:
    """Register ``email``; the code emailed to it."""
    return await server.register(email, password)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def test_a_customer_registers_verifies_logs_in_and_sees_only_their_account(
        server: ShopServer) -> None:
    ada = await server.customer("ada@example.com", PASSWORD)
    bob = await server.customer("bob@example.com", PASSWORD)

    me = (await server.client.get("/identity/me", headers=ada)).json()
    assert me["email"] == "ada@example.com" and me["verified"] is True
    assert me["role"] == "customer"
    other = (await server.client.get("/identity/me", headers=bob)).json()
    assert other["email"] == "bob@example.com" and other["user_id"] != me["user_id"]

    response = await server.client.post("/identity/login",
                                      json={"email": "ADA@example.com", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == int(server.shop.settings.token_ttl)
    await server.mail("ada@example.com", "Welcome to shop")


async def test_an_email_has_one_account_whatever_its_case(server: ShopServer) -> None:
    await register(server, "Grace@Example.com")
    response = await server.client.post(
        "/identity/register", json={"email": "grace@EXAMPLE.COM", "password": PASSWORD})
    assert response.status_code == 409
    assert response.json()["fields"] == ["email"]


async def test_concurrent_registrations_of_one_email_make_one_account(
        server: ShopServer) -> None:
    responses = await asyncio.gather(*(server.client.post(
        "/identity/register", json={"email": f"{case}@example.com", "password": PASSWORD})
        for case in ("twin", "TWIN", "Twin", "twiN")))
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
    count = await server.shop.read_models.run(lambda conn: conn.execute(
        select(func.count()).select_from(accounts)
        .where(accounts.c.email_key == "twin@example.com")).scalar())
    assert count == 1


async def test_log_in_is_refused_until_the_email_is_verified(server: ShopServer) -> None:
    await register(server, "eve@example.com")
    response = await server.client.post("/identity/login",
                                      json={"email": "eve@example.com", "password": PASSWORD})
    assert response.status_code == 403
    assert "verify your email address first" in response.json()["detail"]


async def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(
        server: ShopServer) -> None:
    await server.customer("kim@example.com", PASSWORD)
    wrong_password = await server.client.post(
        "/identity/login", json={"email": "kim@example.com", "password": "not-it-at-all"})
    unknown = await server.client.post(
        "/identity/login", json={"email": "nobody@example.com", "password": PASSWORD})
    assert wrong_password.status_code == unknown.status_code == 401
    assert wrong_password.json()["detail"] == unknown.json()["detail"]


async def test_five_wrong_codes_kill_the_code_and_only_a_new_one_verifies(
        server: ShopServer, clock: ManualClock) -> None:
    code = await register(server, "mallory@example.com")
    details = []
    for _ in range(5):
        response = await server.client.post(
            "/identity/verify", json={"email": "mallory@example.com", "code": wrong(code)})
        assert response.status_code == 422
        details.append(response.json()["detail"])
    assert "4 tries left" in details[0] and "too many wrong codes" in details[-1]

    right_too_late = await server.client.post(
        "/identity/verify", json={"email": "mallory@example.com", "code": code})
    assert right_too_late.status_code == 422
    assert "too many wrong codes" in right_too_late.json()["detail"]

    clock.advance(seconds=61)
    response = await server.client.post("/identity/verification-code",
                                      json={"email": "mallory@example.com"})
    assert response.status_code == 202
    new_code = await server.otp("mallory@example.com", previous=1)
    response = await server.client.post(
        "/identity/verify", json={"email": "mallory@example.com", "code": new_code})
    assert response.status_code == 200, response.text
    assert response.json()["verified"] is True


async def test_an_expired_code_is_refused(server: ShopServer, clock: ManualClock) -> None:
    code = await register(server, "slow@example.com")
    clock.advance(minutes=10)
    response = await server.client.post("/identity/verify",
                                      json={"email": "slow@example.com", "code": code})
    assert response.status_code == 422
    assert "expired" in response.json()["detail"]


async def test_a_code_just_before_it_expires_works(server: ShopServer, clock: ManualClock
                                                   ) -> None:
    code = await register(server, "quick@example.com")
    clock.advance(minutes=9, seconds=59)
    response = await server.client.post("/identity/verify",
                                      json={"email": "quick@example.com", "code": code})
    assert response.status_code == 200


async def test_new_codes_are_rate_limited_and_replace_the_old_one(
        server: ShopServer, clock: ManualClock) -> None:
    first = await register(server, "ren@example.com")
    response = await server.client.post("/identity/verification-code",
                                      json={"email": "ren@example.com"})
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 60

    clock.advance(seconds=60)
    response = await server.client.post("/identity/verification-code",
                                      json={"email": "ren@example.com"})
    assert response.status_code == 202
    second = await server.otp("ren@example.com", previous=1)
    if second != first:  # the old code no longer works (1 in a million: the same digits)
        old = await server.client.post("/identity/verify",
                                     json={"email": "ren@example.com", "code": first})
        assert old.status_code == 422
    response = await server.client.post("/identity/verify",
                                      json={"email": "ren@example.com", "code": second})
    assert response.status_code == 200


async def test_asking_a_code_for_unknown_or_verified_emails_sends_nothing(
        server: ShopServer) -> None:
    await server.customer("done@example.com", PASSWORD)
    for email in ("done@example.com", "ghost@example.com"):
        response = await server.client.post("/identity/verification-code",
                                          json={"email": email})
        assert response.status_code == 202
    response = await server.client.post("/identity/verify",
                                      json={"email": "ghost@example.com", "code": "123456"})
    assert response.status_code == 422
    await server.mail("done@example.com", "Welcome to shop")
    assert server.mails("ghost@example.com") == []
    assert [m["Subject"] for m in server.mails("done@example.com")].count(
        "Your shop verification code") == 1


async def test_tampered_and_expired_tokens_are_401(server: ShopServer, clock: ManualClock
                                                   ) -> None:
    headers = await server.customer("tok@example.com", PASSWORD)
    token = headers["Authorization"].removeprefix("Bearer ")
    head, claims, signature = token.split(".")
    forged = f"{head}.{claims}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
    for bad in (forged, "not-a-token", f"{head}.{claims}."):
        response = await server.client.get("/identity/me",
                                          headers={"Authorization": f"Bearer {bad}"})
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert (await server.client.get("/identity/me")).status_code == 401
    assert (await server.client.get("/identity/me", headers=headers)).status_code == 200

    clock.advance(seconds=server.shop.settings.token_ttl)
    response = await server.client.get("/identity/me", headers=headers)
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


async def test_changing_the_password(server: ShopServer) -> None:
    headers = await server.customer("pat@example.com", PASSWORD)
    refused = await server.client.post("/identity/password", headers=headers, json={
        "current_password": "not-the-password", "new_password": "a brand new one"})
    assert refused.status_code == 422
    changed = await server.client.post("/identity/password", headers=headers, json={
        "current_password": PASSWORD, "new_password": "a brand new one"})
    assert changed.status_code == 200, changed.text

    old = await server.client.post("/identity/login",
                                 json={"email": "pat@example.com", "password": PASSWORD})
    assert old.status_code == 401
    await server.login("pat@example.com", "a brand new one")
    await server.mail("pat@example.com", "Your shop password was changed")
    anonymous = await server.client.post("/identity/password", json={
        "current_password": PASSWORD, "new_password": "a brand new one"})
    assert anonymous.status_code == 401


async def test_invalid_input_is_422_without_echoing_the_password(server: ShopServer) -> None:
    for body in [
        {"email": "not-an-email", "password": PASSWORD},
        {"email": " a@example.com", "password": PASSWORD},
        {"email": "a@example.com", "password": "Pw4-tiny"[:7]},
        {"email": "a@example.com", "password": "x" * 129},
        {"email": "a@example.com"},
        {"email": "a@example.com", "password": PASSWORD, "role": "admin"},
    ]:
        response = await server.client.post("/identity/register", json=body)
        assert response.status_code == 422, body
        assert response.headers["content-type"].startswith(PROBLEM)
        if "password" in body:
            assert body["password"] not in response.text
    for code in ("12345", "1234567", "abcdef", "١٢٣٤٥٦"):
        response = await server.client.post("/identity/verify",
                                            json={"email": "a@example.com", "code": code})
        assert response.status_code == 422, code


async def test_the_admin_account_is_made_once(backend: Settings, tmp_path: Path) -> None:
    settings = shop_settings(tmp_path, backend)
    for _ in range(2):
        async with serve(settings, modules=MODULES) as s:
            me = (await s.client.get("/identity/me", headers=await s.admin())).json()
            assert me["role"] == "admin" and me["verified"] is True
            admins = await s.shop.read_models.run(lambda conn: conn.execute(
                select(func.count()).select_from(accounts)
                .where(accounts.c.email_key == ADMIN_EMAIL.lower())).scalar())
            assert admins == 1


# -- the proof: secrets only in the email ------------------------------------------------------

def _dump(conn: Connection, skip: set[str]) -> dict[str, str]:
    """Every row of every table (but ``skip``) as text, by table."""
    dumped = {}
    for table in inspect(conn).get_table_names():
        if table in skip:
            continue
        rows = conn.execute(text(f'SELECT * FROM "{table}"')).all()
        dumped[table] = "\n".join(" | ".join(_text(v) for v in row) for row in rows)
    return dumped


def _text(value: object) -> str:
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _hashes(conn: Connection) -> list[str]:
    return [str(h) for h in conn.execute(select(accounts.c.password_hash)).scalars()]


async def test_passwords_hashes_and_codes_appear_only_where_they_must(
        server: ShopServer, clock: ManualClock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    new_password = "Another-Secret-Phrase-42"
    responses: list[str] = []

    async def post(path: str, body: dict[str, Any], **kw: Any) -> int:
        response = await server.client.post(path, json=body, **kw)
        responses.append(response.text + str(response.headers))
        return response.status_code

    assert await post("/identity/register", {"email": "sam@example.com",
                                             "password": PASSWORD}) == 201
    first = await server.otp("sam@example.com")
    assert await post("/identity/verify", {"email": "sam@example.com",
                                           "code": wrong(first)}) == 422
    clock.advance(seconds=61)
    assert await post("/identity/verification-code", {"email": "sam@example.com"}) == 202
    second = await server.otp("sam@example.com", previous=1)
    assert await post("/identity/verify", {"email": "sam@example.com", "code": second}) == 200
    old_hashes = await server.shop.read_models.run(_hashes)
    token = (await server.client.post("/identity/login", json={
        "email": "sam@example.com", "password": PASSWORD})).json()["access_token"]
    assert await post("/identity/password", {
        "current_password": PASSWORD, "new_password": new_password},
        headers={"Authorization": f"Bearer {token}"}) == 200
    await server.mail("sam@example.com", "Your shop password was changed")
    await post("/identity/login", {"email": "sam@example.com", "password": new_password})

    async def jobs_done() -> bool | None:  # a sent email's job row is deleted
        left = await server.shop.read_models.run(lambda conn: conn.execute(
            text("SELECT COUNT(*) FROM invariant_jobs")).scalar())
        return True if left == 0 else None
    await eventually(jobs_done, what="the email jobs to be done and deleted")

    hashes = old_hashes + await server.shop.read_models.run(_hashes)
    secrets_ = [PASSWORD, new_password, *hashes]
    codes = [first, second]
    tables = await server.shop.read_models.run(lambda conn: _dump(conn, {accounts.name}))
    assert {"invariant_outbox", "invariant_inbox", "invariant_jobs"} <= set(tables)
    relayed = tables["invariant_outbox"] + tables.get("invariant_broker_messages", "")
    if "invariant_broker_messages" in tables:  # else the in-process broker (no table)
        assert "identity.verification_code_issued" in relayed
    logs = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    places = {**tables, "logs": logs, "responses": "\n".join(responses)}
    for where, content in places.items():
        for secret in secrets_:
            assert secret not in content, f"a password or its hash is in {where}"
        for code in codes:
            assert not re.search(rf"\b{code}\b", content), f"a plain code is in {where}"

    stored = await server.shop.read_models.run(lambda conn: _dump(conn, set())[accounts.name])
    assert PASSWORD not in stored and new_password not in stored
    assert not any(re.search(rf"\b{code}\b", stored) for code in codes)
    assert all(h.startswith("$argon2id$") for h in hashes)
    mailed = [m.get_body(preferencelist=("plain",)) for m in server.mails("sam@example.com")]
    assert any(first in str(body.get_content()) for body in mailed if body is not None)
