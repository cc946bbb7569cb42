"""identity's defences over real HTTP (SQLite and PostgreSQL): password guesses are
throttled per email and address with growing waits, counted before the slow check (so
concurrent guesses cannot slip past), and per email from untrusted addresses; an attacker
elsewhere cannot lock the owner out; the password change counts its guesses alike.

Requests come from several loopback addresses (127.0.0.x): the server sees each as its
own client address, as it would see different hosts."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import func, select

from invariant.testing.clock import ManualClock
from shop.identity.domain import ACCOUNT_GUESSES_FREE, FORGET_AFTER, GUESSES_FREE, MAX_DELAY
from shop.identity.infrastructure import password_guesses
from tests.shop.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, PROBLEM, ShopServer, eventually

PASSWORD = "Tr0ub4dor&3-horse-staple"
OWNER_ADDRESS = "127.0.0.1"  # where the fixtures' client (and so the owner) connects from


@pytest.fixture
def server(identity_server: ShopServer) -> ShopServer:
    """identity + notifications only, on each backend, on ``clock``."""
    return identity_server


@pytest.fixture
async def elsewhere(server: ShopServer) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """Clients connecting from other addresses, by address (made when first asked for)."""
    clients: dict[str, httpx.AsyncClient] = {}
    yield clients
    for client in clients.values():
        await client.aclose()


def client_at(server: ShopServer, clients: dict[str, httpx.AsyncClient], address: str
              ) -> httpx.AsyncClient:
    if address not in clients:
        clients[address] = httpx.AsyncClient(
            base_url=server.base_url, timeout=30,
            transport=httpx.AsyncHTTPTransport(local_address=address))
    return clients[address]


async def log_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/identity/login", json={"email": email, "password": password})


def statuses(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(r.status_code for r in responses)


def assert_throttled(response: httpx.Response) -> int:
    """A 429 as problem+json with Retry-After (its seconds), never echoing the password."""
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == PROBLEM
    assert "too many wrong passwords" in response.json()["detail"]
    assert PASSWORD not in response.text
    return int(response.headers["Retry-After"])


async def test_twenty_concurrent_wrong_guesses_check_only_the_free_ones(
        server: ShopServer) -> None:
    await server.customer("lou@example.com", PASSWORD)
    guesses = await asyncio.gather(*(log_in(server.client, "lou@example.com", f"guess-{n}")
                                     for n in range(20)))
    assert statuses(guesses) == {401: GUESSES_FREE, 429: 20 - GUESSES_FREE}
    for refused in (r for r in guesses if r.status_code == 429):
        assert assert_throttled(refused) >= 1


async def test_nine_wrong_and_one_right_at_once_check_no_more_than_the_free_ones(
        server: ShopServer) -> None:
    """The right password comes with the wrong ones, once they have used up the free
    guesses (had it come first it would have been checked, and its success would rightly
    reset the count: a burst that holds the right password is no attack)."""
    await server.customer("amy@example.com", PASSWORD)
    wrong = [asyncio.create_task(log_in(server.client, "amy@example.com", f"guess-{n}"))
             for n in range(9)]

    async def reserved() -> int | None:
        count = await server.shop.read_models.run(lambda conn: conn.execute(
            select(password_guesses.c.guesses).where(
                password_guesses.c.email_key == "amy@example.com",
                password_guesses.c.source == OWNER_ADDRESS)).scalar())
        return count if count == GUESSES_FREE else None
    await eventually(reserved, what="the free guesses to be reserved")
    right = await log_in(server.client, "amy@example.com", PASSWORD)
    answers = list(await asyncio.gather(*wrong))
    assert statuses(answers) == {401: GUESSES_FREE, 429: 9 - GUESSES_FREE}
    assert_throttled(right)


async def test_unknown_emails_are_throttled_exactly_like_known_ones(
        server: ShopServer) -> None:
    await server.customer("kim@example.com", PASSWORD)

    async def burst(email: str) -> list[httpx.Response]:
        return list(await asyncio.gather(*(log_in(server.client, email, f"guess-{n}")
                                           for n in range(12))))
    known, unknown = await burst("kim@example.com"), await burst("ghost@example.com")
    assert statuses(known) == statuses(unknown) == {401: GUESSES_FREE, 429: 12 - GUESSES_FREE}
    assert ({r.json()["detail"] for r in known} == {r.json()["detail"] for r in unknown})
    assert ({r.headers.get("Retry-After") for r in known}
            == {r.headers.get("Retry-After") for r in unknown})


async def test_waits_double_up_to_the_cap_and_the_right_password_resets_the_count(
        server: ShopServer, clock: ManualClock) -> None:
    await server.customer("ned@example.com", PASSWORD)
    for n in range(GUESSES_FREE):
        assert (await log_in(server.client, "ned@example.com", f"guess-{n}")).status_code == 401
    waits = []
    for n in range(14):
        wait = assert_throttled(await log_in(server.client, "ned@example.com", "guess"))
        waits.append(wait)
        clock.advance(seconds=wait - 1)
        still = await log_in(server.client, "ned@example.com", PASSWORD)  # not yet: refused
        assert_throttled(still)
        clock.advance(seconds=1)
        assert (await log_in(server.client, "ned@example.com", f"more-{n}")).status_code == 401
    cap = int(MAX_DELAY.total_seconds())
    assert waits == [min(cap, 2 ** n) for n in range(14)]
    assert waits[-1] == cap

    clock.advance(seconds=cap)
    assert (await log_in(server.client, "ned@example.com", PASSWORD)).status_code == 200
    for n in range(GUESSES_FREE):  # counted from zero again
        assert (await log_in(server.client, "ned@example.com", f"again-{n}")).status_code == 401
    assert_throttled(await log_in(server.client, "ned@example.com", "one-too-many"))


async def test_an_attacker_elsewhere_cannot_lock_the_owner_out(
        server: ShopServer, elsewhere: dict[str, httpx.AsyncClient]) -> None:
    """The issue's case: wrong guesses for the admin from one address used to lock the
    admin out everywhere for 15 minutes."""
    attacker = client_at(server, elsewhere, "127.0.0.2")
    for n in range(GUESSES_FREE):
        assert (await log_in(attacker, ADMIN_EMAIL, f"guess-{n}")).status_code == 401
    assert_throttled(await log_in(attacker, ADMIN_EMAIL, ADMIN_PASSWORD))  # even the right one
    assert (await log_in(server.client, ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 200
    assert_throttled(await log_in(attacker, ADMIN_EMAIL, "guess"))  # still waiting


async def test_many_addresses_hit_the_account_ceiling_but_not_the_owners_address(
        server: ShopServer, elsewhere: dict[str, httpx.AsyncClient]) -> None:
    await server.customer("val@example.com", PASSWORD)  # logs in: this address is trusted
    addresses = -(-ACCOUNT_GUESSES_FREE // GUESSES_FREE) + 1  # one more than it takes
    tried = checked = 0
    for n in range(addresses):  # each attacking address tries its free guesses at once
        attacker = client_at(server, elsewhere, f"127.0.0.{2 + n}")
        burst = await asyncio.gather(*(log_in(attacker, "val@example.com", f"g-{n}-{m}")
                                       for m in range(GUESSES_FREE)))
        tried, checked = tried + len(burst), checked + statuses(list(burst))[401]
    assert tried > ACCOUNT_GUESSES_FREE
    assert checked == ACCOUNT_GUESSES_FREE  # the ceiling, however the guesses are spread
    fresh = client_at(server, elsewhere, "127.0.0.99")
    assert_throttled(await log_in(fresh, "val@example.com", "first-try-from-here"))
    assert_throttled(await log_in(fresh, "val@example.com", PASSWORD))  # a new place waits
    assert (await log_in(server.client, "val@example.com", PASSWORD)).status_code == 200
    for n in range(GUESSES_FREE - 1):  # the owner's own typos count only here
        assert (await log_in(server.client, "val@example.com", f"typo-{n}")).status_code == 401
    assert (await log_in(server.client, "val@example.com", PASSWORD)).status_code == 200


async def test_wrong_current_passwords_count_like_wrong_log_ins(
        server: ShopServer, elsewhere: dict[str, httpx.AsyncClient]) -> None:
    headers = await server.customer("pia@example.com", PASSWORD)

    async def change(current: str) -> httpx.Response:
        return await server.client.post("/identity/password", headers=headers, json={
            "current_password": current, "new_password": "a brand new password"})
    answers = await asyncio.gather(*(change(f"guess-{n}") for n in range(20)))
    assert statuses(list(answers)) == {422: GUESSES_FREE, 429: 20 - GUESSES_FREE}
    assert_throttled(await change(PASSWORD))
    assert_throttled(await log_in(server.client, "pia@example.com", PASSWORD))  # one count
    other = client_at(server, elsewhere, "127.0.0.3")
    assert (await log_in(other, "pia@example.com", PASSWORD)).status_code == 200


async def test_password_guesses_leave_no_row_behind_forever(
        server: ShopServer, clock: ManualClock, elsewhere: dict[str, httpx.AsyncClient]
        ) -> None:
    """Counts for ever new emails and addresses are deleted once forgotten: the table
    does not grow without bound."""
    async def rows() -> Any:
        return await server.shop.read_models.run(lambda conn: conn.execute(
            select(func.count()).select_from(password_guesses)).scalar())
    for n in range(5):
        await log_in(client_at(server, elsewhere, f"127.0.0.{10 + n}"),
                     f"nobody-{n}@example.com", "guess")
    assert await rows() == 10  # per email: its address's count and its account-wide one
    clock.advance(seconds=FORGET_AFTER.total_seconds() + 1)
    for n in range(5):
        await log_in(server.client, f"later-{n}@example.com", "guess")
    assert await rows() == 10  # as many forgotten ones deleted as new ones made


async def test_behind_a_trusted_proxy_the_forwarded_address_counts(
        server: ShopServer, elsewhere: dict[str, httpx.AsyncClient]) -> None:
    """uvicorn takes the client's address from X-Forwarded-For only when the connection
    comes from FORWARDED_ALLOW_IPS (by default 127.0.0.1 and ::1: a proxy on this host);
    from anywhere else the header is ignored, so it cannot be used to dodge the count."""
    await server.customer("rex@example.com", PASSWORD)

    async def via(client: httpx.AsyncClient, forwarded_for: str, password: str
                  ) -> httpx.Response:
        return await client.post("/identity/login", headers={"X-Forwarded-For": forwarded_for},
                                 json={"email": "rex@example.com", "password": password})
    proxy = server.client  # 127.0.0.1: trusted
    for n in range(GUESSES_FREE):
        assert (await via(proxy, "203.0.113.7", f"guess-{n}")).status_code == 401
    assert_throttled(await via(proxy, "203.0.113.7", "guess"))
    assert (await via(proxy, "198.51.100.1", f"other-{n}")).status_code == 401  # its own count

    untrusted = client_at(server, elsewhere, "127.0.0.5")
    for n in range(GUESSES_FREE):  # a new forwarded address each time: ignored
        assert (await via(untrusted, f"192.0.2.{n}", f"g-{n}")).status_code == 401
    assert_throttled(await via(untrusted, "192.0.2.200", "guess"))
