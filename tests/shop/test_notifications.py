"""notifications over the real path (SQLite and PostgreSQL): integration events in the
outbox → broker → consumer (inbox, dead letters) → email job → SMTP (the sink, or a
failing server: retries, then a dead job)."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email import policy
from email.errors import HeaderParseError
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from aiosmtplib.email import flatten_message
from sqlalchemy import Connection, MetaData, insert

from invariant.config import Settings
from invariant.messaging import deadletters, jobs
from invariant.retry import RetryPolicy
from invariant.sql.outbox_table import outbox_table
from shop.identity import wiring as identity
from shop.identity.published import CodeSeal
from shop.notifications import wiring as notifications
from shop.notifications.domain import Email
from shop.notifications.infrastructure import mail_sink
from shop.notifications.wiring import CONSUMER
from tests.shop.conftest import SECRET, ShopServer, eventually, free_port, serve, shop_settings
from tests.shop.shopping import place, settled

MODULES = [identity.module, notifications.module]
_outbox = outbox_table(MetaData())


@pytest.fixture
async def server(backend: Settings, tmp_path: Path) -> AsyncIterator[ShopServer]:
    """Here: identity + notifications only, on each backend."""
    async with serve(shop_settings(tmp_path, backend), modules=MODULES) as running:
        yield running


async def emit(server: ShopServer, message_type: str, data: dict[str, Any],
               version: int = 1) -> None:
    """Publish an integration event as its owner would: a row in the outbox."""
    now = datetime.now(UTC)

    def write(conn: Connection) -> None:
        conn.execute(insert(_outbox).values(
            message_id=uuid.uuid4(), stream_id=f"test-{data.get('order_id')}",
            message_type=message_type, schema_version=version, position=None, data=data,
            metadata={"version": version, "source": "test",
                      "occurred_at": now.isoformat().replace("+00:00", "Z")},
            created_at=now, published_at=None))
    await server.shop.read_models.run(write)


async def customer_id(server: ShopServer, email: str) -> str:
    headers = await server.customer(email)
    return str((await server.client.get("/identity/me", headers=headers)).json()["user_id"])


def order(customer: str, order_id: str, **extra: Any) -> dict[str, Any]:
    return {"order_id": order_id, "customer_id": customer,
            "total": {"value": "118.50", "currency": "USD"}, "lines": [],
            "occurred_at": "2026-01-01T12:00:00Z", **extra}


async def parked(server: ShopServer) -> list[deadletters.DeadLetter]:
    return await server.shop.read_models.run(
        lambda conn: deadletters.list_parked(conn, CONSUMER))


async def test_order_events_become_emails_to_the_customer(server: ShopServer) -> None:
    ada = await customer_id(server, "ada@example.com")
    await emit(server, "order.placed", order(ada, "ord-1"))
    placed = await server.mail("ada@example.com", "Order ord-1 received")
    body = placed.get_body(preferencelist=("plain",))
    assert body is not None and "118.50 USD" in body.get_content()

    await emit(server, "order.shipped", order(ada, "ord-1", tracking_number="TRK-0A1B2C3D4E"))
    shipped = await server.mail("ada@example.com", "Order ord-1 shipped")
    body = shipped.get_body(preferencelist=("plain",))
    assert body is not None and "TRK-0A1B2C3D4E" in body.get_content()

    await emit(server, "order.cancelled", order(ada, "ord-2", reason="out of stock: poster"))
    cancelled = await server.mail("ada@example.com", "Order ord-2 cancelled")
    body = cancelled.get_body(preferencelist=("plain",))
    assert body is not None and "out of stock: poster" in body.get_content()
    assert await parked(server) == []


async def test_unsupported_versions_and_malformed_events_are_parked_not_mailed(
        server: ShopServer) -> None:
    bob = await customer_id(server, "bob@example.com")
    await emit(server, "order.placed", order(bob, "ord-v2"), version=2)
    await emit(server, "order.placed", {"order_id": "ord-anon"})
    await emit(server, "catalog.something_else", {"order_id": "x"})  # not ours: ignored
    await emit(server, "order.shipped", order(bob, "ord-after"))

    await server.mail("bob@example.com", "Order ord-after shipped")  # the ones before: done
    letters = await parked(server)
    assert sorted(letter.message.data["order_id"] for letter in letters) == [
        "ord-anon", "ord-v2"]
    errors = " ".join(letter.error for letter in letters)
    assert "UnsupportedVersionError" in errors and "without customer_id" in errors
    assert not [m for m in server.mails("bob@example.com") if "ord-v2" in str(m["Subject"])]


class _Refusing:
    """An SMTP server that is always busy (451), counting the attempts."""

    def __init__(self) -> None:
        self.attempts = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.attempts += 1
        return "451 4.3.0 Mailbox busy, try again later"


async def test_a_failing_smtp_server_leads_to_retries_then_a_dead_job(
        backend: Settings, tmp_path: Path) -> None:
    port = free_port()
    refusing = _Refusing()
    smtp = await asyncio.get_running_loop().create_server(lambda: SMTP(refusing),
                                                          "127.0.0.1", port)
    settings = shop_settings(tmp_path, backend, mail_sink=False, smtp_port=port)
    try:
        async with serve(settings, modules=MODULES) as running:
            running.shop.jobs.backoff = RetryPolicy(attempts=3, first_delay=0.05, max_delay=0.2)
            response = await running.client.post("/identity/register", json={
                "email": "unlucky@example.com", "password": "correct horse battery"})
            assert response.status_code == 201

            async def dead() -> list[jobs.Job] | None:
                found = await running.shop.read_models.run(jobs.dead_jobs)
                return found or None
            [job] = await eventually(dead, what="the email job to die")
            assert refusing.attempts == 3 and job.attempt == 3
            assert "451" in (job.last_error or "")
            assert job.payload["kind"] == "verification_code"
            sealed = job.payload["params"]["sealed_code"]  # still sealed, as in the event
            code = CodeSeal(SECRET).open(sealed, datetime.now(UTC), timedelta(minutes=15))
            assert re.fullmatch(r"[0-9]{6}", code)
            assert code not in orjson.dumps(job.payload).decode() + (job.last_error or "")
            assert running.mails() == []
    finally:
        smtp.close()


async def test_a_customer_is_emailed_when_their_order_is_placed_and_shipped(
        backend: Settings, tmp_path: Path) -> None:
    """The whole shop: ordering's real integration events reach the customer's inbox."""
    async with serve(shop_settings(tmp_path, backend)) as shop:
        headers = await shop.customer("buyer@example.com")
        order_id = await place(shop, headers, ("mouse", 2))
        assert (await settled(shop, headers, order_id))["status"] == "shipped"
        received = await shop.mail("buyer@example.com", f"Order {order_id} received")
        body = received.get_body(preferencelist=("plain",))
        assert body is not None and "59.00 USD" in body.get_content()
        await shop.mail("buyer@example.com", f"Order {order_id} shipped")
        assert await parked(shop) == []


async def test_the_mailer_keeps_its_connection_between_emails_and_replaces_a_closed_one(
    tmp_path: Path
) -> None:
    from shop.notifications.domain import Email
    from shop.notifications.infrastructure import SmtpMailer, mail_sink

    port = free_port()
    mailbox = tmp_path / "mail"
    mailer = SmtpMailer("127.0.0.1", port)
    email = Email(to="ada@example.com", subject="Hello", text="one")
    try:
        async with mail_sink("127.0.0.1", port, mailbox):
            for _ in range(3):
                await mailer.send(email)
            assert mailer.connections_opened == 1  # three emails, one connection
            mailer._idle[0].close()  # the kept connection is dropped while idle
            await mailer.send(email)
            assert mailer.connections_opened == 2
            await asyncio.gather(*(mailer.send(email) for _ in range(3)))  # side by side
    finally:
        await mailer.close()
    assert len(list(mailbox.glob("*.eml"))) == 7


async def test_more_emails_at_once_than_the_pool_holds_wait_for_its_connections(
    tmp_path: Path
) -> None:
    from shop.notifications.domain import Email
    from shop.notifications.infrastructure import SmtpMailer, mail_sink

    port = free_port()
    mailbox = tmp_path / "mail"
    mailer = SmtpMailer("127.0.0.1", port, size=2)
    try:
        async with mail_sink("127.0.0.1", port, mailbox):
            await asyncio.gather(*(
                mailer.send(Email(to=f"u{n}@example.com", subject=f"Hello {n}", text="hi"))
                for n in range(12)))
            assert mailer.connections_opened == 2  # twelve emails, never a third connection
            assert len(mailer._idle) == 2
    finally:
        await mailer.close()
    assert mailer._idle == []
    assert len(list(mailbox.glob("*.eml"))) == 12


def test_an_smtp_pool_needs_a_connection() -> None:
    from shop.notifications.infrastructure import SmtpMailer

    with pytest.raises(ValueError, match="at least one connection, not 0"):
        SmtpMailer("127.0.0.1", 25, size=0)


@pytest.mark.parametrize("email", [
    Email("ada@example.com", "Order 1 received", "Thank you.\n"),
    Email("ada@example.com", "Commande expédiée — merci", "Déjà en route ✓\n"),
    Email("zoë@exämple.com", "Hello", "one\n"),  # an address that needs SMTPUTF8
], ids=["ascii", "non-ascii text", "non-ascii address"])
def test_an_email_reads_back_as_it_was_written(email: Email) -> None:
    from shop.notifications.infrastructure import SENDER, mime

    sent = flatten_message(mime(email), utf8=not email.to.isascii())
    read = BytesParser(policy=policy.default).parsebytes(sent)
    assert (read["From"], read["To"], read["Subject"]) == (SENDER, email.to, email.subject)
    body = read.get_body(preferencelist=("plain",))
    assert body is not None and body.get_content().replace("\r\n", "\n") == email.text
    assert read["Message-ID"].endswith("@shop.local>")


@pytest.mark.parametrize("email", [
    Email("ada@example.com", "Hello\r\nBcc: eve@example.com", "one"),
    Email("ada@example.com\nBcc: eve@example.com", "Hello", "one"),
], ids=["subject", "address"])
def test_a_header_cannot_smuggle_another_header_in(email: Email) -> None:
    from shop.notifications.infrastructure import mime

    with pytest.raises((HeaderParseError, ValueError)):
        flatten_message(mime(email))


@pytest.mark.parametrize(("root", "sink"), [(logging.WARNING, logging.WARNING),
                                            (logging.INFO, logging.INFO),
                                            (logging.DEBUG, logging.INFO)])
async def test_the_mail_sink_logs_commands_only_where_the_shop_logs_info_and_never_lines(
        tmp_path: Path, root: int, sink: int) -> None:
    """aiosmtpd's DEBUG lines hold every line of a message (one-time codes); its INFO lines
    are made only where they would be written."""
    smtp_log, root_log = logging.getLogger("mail.log"), logging.getLogger()
    saved = smtp_log.level, root_log.level
    smtp_log.setLevel(logging.NOTSET)
    root_log.setLevel(root)
    try:
        async with mail_sink("127.0.0.1", free_port(), tmp_path / "mail"):
            assert smtp_log.getEffectiveLevel() == sink
        root_log.setLevel(logging.DEBUG)  # the shop's logging turned up later
        assert not smtp_log.isEnabledFor(logging.DEBUG)
    finally:
        smtp_log.setLevel(saved[0])
        root_log.setLevel(saved[1])
