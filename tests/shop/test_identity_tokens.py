"""Access tokens are checked against the accounts they name, on every request, over real
HTTP (SQLite and PostgreSQL): a validly signed token whose account does not exist is 401,
the role comes from the account (a token claiming admin makes no admin), and a password
change revokes every token issued before it. A database made by an older shop (accounts
without a token version) is brought up to date at start-up."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, inspect, select

from invariant.config import Settings
from invariant.sql.database import ReadModelDatabase
from invariant.sql.outbox_table import Moment
from invariant.testing.clock import ManualClock
from shop.identity import wiring as identity
from shop.identity.infrastructure import Argon2Passwords, accounts
from shop.kernel import CustomerId
from shop.notifications import wiring as notifications
from shop.platform.auth import TokenClaims, Tokens
from shop.platform.errors import NotAuthenticated
from tests.conftest import POSTGRES_DSN
from tests.shop.conftest import ADMIN_EMAIL, SECRET, ShopServer, serve, shop_settings

PASSWORD = "Tr0ub4dor&3-horse-staple"


def signed(claims: dict[str, Any]) -> dict[str, str]:
    """Authorization headers with a token made and signed here, with the shop's secret
    (what a leaked secret, or a token of a deleted account, would give an attacker)."""
    now = datetime.now(UTC)
    token = jwt.encode({"iss": "shop", "iat": now, "exp": now + timedelta(hours=1),
                        "jti": uuid.uuid4().hex, **claims}, SECRET, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


def claims_of(headers: dict[str, str]) -> dict[str, Any]:
    token = headers["Authorization"].removeprefix("Bearer ")
    found: dict[str, Any] = jwt.decode(token, SECRET, algorithms=["HS256"], issuer="shop")
    return found


async def test_a_signed_token_for_no_account_is_refused_everywhere(server: ShopServer
                                                                   ) -> None:
    ghost = signed({"sub": CustomerId.new().value, "role": "customer", "ver": 0})
    for method, path in (("POST", "/orders"), ("GET", "/orders"), ("GET", "/identity/me"),
                         ("GET", "/billing/invoices")):
        response = await server.client.request(method, path, headers=ghost)
        assert response.status_code == 401, (path, response.text)
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert "does not exist" in response.json()["detail"]
    admin_ghost = signed({"sub": CustomerId.new().value, "role": "admin", "ver": 0})
    response = await server.client.get("/admin/catalog/products", headers=admin_ghost)
    assert response.status_code == 401


async def test_the_role_comes_from_the_account_not_the_token(server: ShopServer) -> None:
    customer = await server.customer("cid@example.com", PASSWORD)
    claims = claims_of(customer)
    promoted = signed({"sub": claims["sub"], "ver": claims["ver"], "role": "admin"})
    response = await server.client.get("/admin/catalog/products", headers=promoted)
    assert response.status_code == 403, response.text
    me = await server.client.get("/identity/me", headers=promoted)
    assert me.status_code == 200 and me.json()["role"] == "customer"

    admin = await server.admin()
    demoted = signed({"sub": claims_of(admin)["sub"], "ver": claims_of(admin)["ver"],
                      "role": "customer"})
    assert (await server.client.get("/admin/catalog/products", headers=demoted)).status_code == 200


async def test_a_token_without_a_version_is_refused(server: ShopServer) -> None:
    """The tokens of an older shop (no ``ver``) stop working."""
    customer = await server.customer("old@example.com", PASSWORD)
    unversioned = signed({"sub": claims_of(customer)["sub"], "role": "customer"})
    response = await server.client.get("/identity/me", headers=unversioned)
    assert response.status_code == 401
    assert "not valid" in response.json()["detail"]


async def change_password_and_see_revoked(s: ShopServer, by: dict[str, str],
                                          earlier: list[dict[str, str]]) -> None:
    """Change the password with ``by``'s token; each of ``earlier`` is refused as revoked."""
    changed = await s.client.post("/identity/password", headers=by, json={
        "current_password": PASSWORD, "new_password": "a brand new password"})
    assert changed.status_code == 200, changed.text
    for old in earlier:
        response = await s.client.get("/identity/me", headers=old)
        assert response.status_code == 401
        assert "revoked" in response.json()["detail"]


async def test_a_password_change_revokes_every_earlier_token(identity_server: ShopServer
                                                             ) -> None:
    s = identity_server
    laptop = await s.customer("pat@example.com", PASSWORD)
    phone = await s.login("pat@example.com", PASSWORD)
    await change_password_and_see_revoked(s, laptop, [laptop, phone])
    fresh = await s.login("pat@example.com", "a brand new password")
    assert (await s.client.get("/identity/me", headers=fresh)).status_code == 200
    assert claims_of(fresh)["ver"] == claims_of(laptop)["ver"] + 1


async def test_a_token_remembered_as_verified_is_still_revoked_by_a_password_change(
        identity_server: ShopServer) -> None:
    """Tokens remember the claims of tokens they verified; revocation is the account's,
    read on every request, so a remembered token is refused at once all the same."""
    s = identity_server
    laptop = await s.customer("kim@example.com", PASSWORD)
    phone = await s.login("kim@example.com", PASSWORD)
    for token in (laptop, phone):  # verified, so remembered
        assert (await s.client.get("/identity/me", headers=token)).status_code == 200
    await change_password_and_see_revoked(s, phone, [laptop, phone])


def test_a_remembered_token_expires_on_time_and_a_tampered_copy_is_refused() -> None:
    clock = ManualClock()
    tokens = Tokens(SECRET, 60, clock=clock)
    token = tokens.issue("u-1", 3)
    assert tokens.verify(token) == TokenClaims("u-1", 3)
    assert tokens.verify(token) == TokenClaims("u-1", 3)  # remembered
    head, body, signature = token.split(".")
    other = "A" if signature[0] != "A" else "B"
    for tampered in (f"{head}.{body}.{other}{signature[1:]}", f"{head}.{body}.", token + "x"):
        with pytest.raises(NotAuthenticated, match="not valid"):
            tokens.verify(tampered)
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode({**claims, "ver": 4}, "another-secret-0123456789-abcdefghijklmn",
                        algorithm="HS256")
    with pytest.raises(NotAuthenticated, match="not valid"):
        tokens.verify(forged)
    clock.advance(seconds=60)
    for _ in range(2):  # refused when remembered, and after it was forgotten
        with pytest.raises(NotAuthenticated, match="expired"):
            tokens.verify(token)


def test_tokens_remember_a_bounded_number_of_tokens() -> None:
    clock = ManualClock()
    tokens = Tokens(SECRET, 60, clock=clock, remember=2)
    issued = [tokens.issue(f"u-{n}", 0) for n in range(3)]
    for token in issued:
        tokens.verify(token)
    assert list(tokens._verified) == issued[1:]  # the oldest forgotten
    assert tokens.verify(issued[0]) == TokenClaims("u-0", 0)  # verified again
    with pytest.raises(ValueError, match="remember"):
        Tokens(SECRET, 60, remember=-1)


# -- a database made by an older shop -------------------------------------------------------

def _older_tables() -> tuple[MetaData, Table]:
    """identity's accounts table as the shop before token versions made it, and the
    per-email lock table of that shop."""
    metadata = MetaData()
    table = Table("identity_accounts", metadata, *(
        Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable,
               unique=c.unique) for c in accounts.columns if c.name != "token_version"))
    Table("identity_login_failures", metadata,
          Column("email_key", String(320), primary_key=True),
          Column("failures", Integer, nullable=False),
          Column("window_started", Moment(), nullable=False),
          Column("locked_until", Moment()))
    return metadata, table


def _database(backend: Settings) -> ReadModelDatabase:
    if backend.store == "sqlite":
        return ReadModelDatabase.for_url(f"sqlite:///{backend.sqlite_path}")
    return ReadModelDatabase.for_url(POSTGRES_DSN, schema=backend.postgres_schema)


@pytest.mark.parametrize("starts", [1, 2])
async def test_an_older_database_gains_token_versions_at_start_up(
        backend: Settings, tmp_path: Path, starts: int) -> None:
    metadata, older = _older_tables()
    password_hash = await Argon2Passwords().hash(PASSWORD)
    now = datetime.now(UTC)
    database = _database(backend)
    try:
        await database.run(metadata.create_all)
        await database.run(lambda conn: conn.execute(insert(older).values(
            id=CustomerId.new().value, email="early@example.com", email_key="early@example.com",
            role="customer", password_hash=password_hash, registered_at=now, verified_at=now,
            code_wrong_tries=0, version=3)))
    finally:
        await database.close()

    settings = shop_settings(tmp_path, backend)
    for _ in range(starts):  # the second start finds everything in place
        async with serve(settings, modules=[identity.module, notifications.module]) as s:
            early = await s.login("early@example.com", PASSWORD)
            assert claims_of(early)["ver"] == 0
            me = await s.client.get("/identity/me", headers=early)
            assert me.status_code == 200 and me.json()["email"] == "early@example.com"
            assert (await s.client.get("/identity/me", headers=await s.admin())).json()[
                "role"] == "admin"
            versions = await s.shop.read_models.run(lambda conn: conn.execute(
                select(accounts.c.email_key, accounts.c.token_version)).all())
            assert dict(versions) == {"early@example.com": 0, ADMIN_EMAIL: 0}
            tables = await s.shop.read_models.run(lambda conn: inspect(conn).get_table_names())
            assert "identity_login_failures" in tables  # an older shop may still use it
