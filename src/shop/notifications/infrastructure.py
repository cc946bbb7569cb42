"""notifications' adapters: the recipients table, the consumer and job handlers over it, the
SMTP mailer (aiosmtplib) and the local SMTP sink (aiosmtpd) that saves every message it
receives as ``<directory>/<sortable UTC time>-<uuid>.eml``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from email.message import EmailMessage
from email.message import Message as MimeMessage
from email.mime.text import MIMEText
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import (
    Column,
    Connection,
    MetaData,
    String,
    Table,
    bindparam,
    insert,
    select,
    update,
)

from invariant.domain.errors import ConfigurationError
from invariant.files import FILE_MODE, private_directory
from invariant.messaging import jobs
from invariant.messaging.port import Message
from invariant.telemetry import traced
from shop.notifications.application import SEND_EMAIL, emails_for
from shop.notifications.domain import Email

SENDER_ADDRESS = "no-reply@shop.local"
SENDER = f"shop <{SENDER_ADDRESS}>"
MAX_ATTEMPTS = 8
"""Sending attempts per email (the job worker's backoff may allow fewer)."""

metadata = MetaData()
recipients = Table(
    "notifications_recipients", metadata,
    Column("user_id", String(36), primary_key=True),
    Column("email", String(320), nullable=False),
)


_CHANGE = update(recipients).where(recipients.c.user_id == bindparam("user")).values(
    email=bindparam("address"))
_ADD = insert(recipients).values(user_id=bindparam("user"), email=bindparam("address"))
_EMAIL_OF = select(recipients.c.email).where(recipients.c.user_id == bindparam("user"))
"""Built once: the consumer runs them for every message."""


class SqlRecipients:
    """Recipients in the consumer's transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def remember(self, user_id: str, email: str) -> None:
        row = {"user": user_id, "address": email}
        if self.conn.execute(_CHANGE, row).rowcount == 0:
            self.conn.execute(_ADD, row)

    def email_of(self, user_id: str) -> str | None:
        found = self.conn.execute(_EMAIL_OF, {"user": user_id}).scalar()
        return None if found is None else str(found)


def consume(conn: Connection, message: Message) -> None:
    """The consumer handler: queue the emails ``message`` asks for, in its transaction."""
    for job in emails_for(message, SqlRecipients(conn)):
        jobs.enqueue(conn, SEND_EMAIL, job.payload(), max_attempts=MAX_ATTEMPTS)


class SmtpMailer:
    """Sends over SMTP to ``host:port`` (STARTTLS when the server offers it).

    A pool of at most ``size`` connections, kept open between emails: an email costs its
    MAIL, RCPT and DATA round trips, not a new connection, greeting and QUIT. More emails
    at once than ``size`` wait for a free connection rather than open one each (a job
    worker runs a whole claim side by side; opening and quitting a connection per extra
    email cost more than the emails). A kept connection the server closed meanwhile is
    replaced by a new one for that email."""

    def __init__(self, host: str, port: int, *, timeout: float = 10.0, size: int = 16) -> None:
        if size < 1:
            raise ValueError(f"an SMTP pool needs at least one connection, not {size}")
        self.host = host
        self.port = port
        self.timeout = timeout
        self.size = size
        self.connections_opened = 0
        self._idle: list[aiosmtplib.SMTP] = []
        self._free = asyncio.Semaphore(size)

    async def send(self, email: Email) -> None:
        await traced("smtp send", self._deliver(mime(email), email.to),
                     {"server.address": self.host, "server.port": self.port}, kind="client")

    async def _deliver(self, message: MimeMessage, to: str) -> None:
        async with self._free:  # at most ``size`` connections in use, so kept
            while self._idle:
                client = self._idle.pop()
                try:
                    await _send(client, message, to)
                except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPResponseException,
                        OSError):
                    await _quit(client)  # closed while idle: the email goes on a new one
                    continue
                except BaseException:
                    await _quit(client)  # in an unknown state: not kept
                    raise
                self._idle.append(client)
                return
            client = aiosmtplib.SMTP(hostname=self.host, port=self.port, timeout=self.timeout)
            await client.connect()
            self.connections_opened += 1
            try:
                await _send(client, message, to)
            except BaseException:
                await _quit(client)
                raise
            self._idle.append(client)

    async def close(self) -> None:
        """Say QUIT on every kept connection."""
        idle, self._idle = self._idle, []
        for client in idle:
            await _quit(client)


def mime(email: Email) -> MimeMessage:
    """``email`` as a MIME message.

    Built with the email package's legacy API: the modern ``EmailMessage`` parses each
    header through its header registry, about 420 µs per email against 20 µs here, and was
    7.7% of shop's loop under W6. A subject or body that is not ASCII is encoded the same
    way by both (RFC 2047 words, UTF-8 in base64). An address that is not ASCII needs
    SMTPUTF8, which only the modern API writes, so such an email takes that one."""
    if not email.to.isascii():
        modern = EmailMessage()
        modern["From"] = SENDER
        modern["To"] = email.to
        modern["Subject"] = email.subject
        modern["Message-ID"] = make_msgid(domain="shop.local")
        modern.set_content(email.text)
        return modern
    message = MIMEText(email.text, "plain", "us-ascii" if email.text.isascii() else "utf-8")
    message["From"] = SENDER
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Message-ID"] = make_msgid(domain="shop.local")
    return message


async def _send(client: aiosmtplib.SMTP, message: MimeMessage, to: str) -> None:
    # The envelope's addresses are known: aiosmtplib would parse them out of the headers
    # again for every email (a tenth of sending).
    await client.send_message(message, sender=SENDER_ADDRESS, recipients=[to])


async def _quit(client: aiosmtplib.SMTP) -> None:
    with contextlib.suppress(aiosmtplib.SMTPException, OSError):
        if client.is_connected:
            await client.quit()
    client.close()


class _SaveMessages:
    """aiosmtpd handler: each message received becomes one ``.eml`` file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        body = content.encode() if isinstance(content, str) else content
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex}.eml"
        await asyncio.to_thread(_write_atomically, self.directory / name, body)
        return "250 Message accepted for delivery"


def _write_atomically(path: Path, body: bytes) -> None:
    partial = path.with_suffix(".partial")
    try:
        descriptor = _create_private(partial)
    except FileNotFoundError:  # the directory was removed since the sink started
        private_directory(path.parent)
        descriptor = _create_private(partial)
    with open(descriptor, "wb") as file:
        file.write(body)
    os.replace(partial, path)  # readers globbing *.eml never see half a message


def _create_private(path: Path) -> int:
    """A new file for the owner only (an email may hold a one-time code), opened to write:
    one system call, where making it private and then opening it took four."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)


@asynccontextmanager
async def mail_sink(host: str, port: int, directory: Path) -> AsyncIterator[None]:
    """A local SMTP server on ``host:port`` saving messages into ``directory``, served by
    the running event loop while the block runs."""
    await asyncio.to_thread(private_directory, directory)
    # aiosmtpd logs every line of every message at DEBUG: that would put one-time codes
    # in the shop's logs. Its INFO lines (connections, commands) are enough, and only
    # where the shop logs INFO: pinned at INFO under a WARNING root, it made a record of
    # each command that no handler wrote (1% of shop's CPU under W6).
    smtp_log = logging.getLogger("mail.log")
    if smtp_log.level < logging.INFO:  # unset or DEBUG
        smtp_log.setLevel(max(logging.INFO, smtp_log.getEffectiveLevel()))
    handler = _SaveMessages(directory)
    loop = asyncio.get_running_loop()
    try:
        server = await loop.create_server(lambda: _smtp(handler), host, port)
    except OSError as exc:
        raise ConfigurationError(
            f"the local mail sink cannot listen on {host}:{port} ({exc.strerror or exc}); "
            "set SHOP_SMTP_PORT to a free port, or SHOP_MAIL_SINK=off to send to a real "
            "SMTP server") from exc
    try:
        yield
    finally:
        server.close()
        with contextlib.suppress(TimeoutError):  # a client still connected: do not hang
            async with asyncio.timeout(2.0):
                await server.wait_closed()


def _smtp(handler: Any) -> SMTP:
    return SMTP(handler, hostname="shop-mail-sink", ident="shop mail sink")
