"""What happened to W6's orders, read where it is recorded: the event store (when each order
was shipped, charged, cancelled) and the mail sink (when each email arrived).

Read from outside shop, over its own connection, so reading changes nothing in shop but
the CPU it takes: the event store's rows of the ordering, payments and shipping categories
(their stream ids end with the order id) and the ``.eml`` files of the local SMTP sink
(named ``<UTC time, microseconds>-<uuid>.eml`` by the sink when it received them).
"""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import re
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import asyncpg
import orjson

CATEGORIES = ("ordering_order", "inventory_reservation", "payments_payment",
              "shipping_shipment")
SHIPPED = "ordering.OrderShipped"
PLACED = "ordering.OrderPlaced"
CANCELLED = "ordering.OrderCancelled"
CHARGED = "payments.PaymentCharged"
REFUNDED = "payments.PaymentRefunded"
SHIPMENT = "shipping.ShipmentCreated"
RESERVED = "inventory.StockReserved"
NOTIFICATIONS = "notifications"
"""The consumer that turns order events into emails (its inbox says when it handled each)."""
KINDS = {"received": "order_placed", "shipped": "order_shipped",
         "cancelled": "order_cancelled"}
"""Subject word of each order email → the email kind notifications names it by."""
_ORDER_SUBJECT = re.compile(r"^Order (?P<order>[0-9a-f]{32}) (?P<word>received|shipped|"
                            r"cancelled)$")
_SINK_NAME = re.compile(r"^(?P<time>\d{8}T\d{12}Z)-[0-9a-f]{32}\.eml$")


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One event of an order's streams: which order, its type, when it was recorded
    (seconds since the epoch)."""

    order_id: str
    event_type: str
    recorded: float


@dataclass(frozen=True, slots=True)
class Relayed:
    """An order's integration message on its way to an email: when the relay published
    it to the broker and when the notifications consumer handled it (seconds since the
    epoch)."""

    order_id: str
    message_type: str
    published: float
    handled: float


class EventLog(Protocol):
    """Reads the order events of one shop's event store."""

    async def shipped(self) -> int:
        """How many orders are shipped so far."""

    async def cancellations(self) -> list[str]:
        """The reason of every order cancelled so far."""

    async def order_events(self) -> list[StoredEvent]:
        """Every event of the ordering, payments and shipping streams."""

    async def relayed(self) -> list[Relayed]:
        """The order messages' relay and consumer times, where the broker keeps them
        (the SQL broker does; a server broker does not: empty)."""

    async def close(self) -> None:
        """Let go of the connection."""


def _order_of(stream_id: str) -> str:
    return stream_id.rsplit("-", 1)[-1]


class SQLiteEventLog:
    """Shop's SQLite file, read on a connection of its own (WAL: readers never block
    shop's writer)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = sqlite3.connect(self.path, isolation_level=None)
            self._conn.execute("PRAGMA query_only = ON")
            self._conn.execute("PRAGMA busy_timeout = 10000")
        return self._conn

    async def shipped(self) -> int:
        row = self._connection().execute(
            "SELECT count(*) FROM invariant_events WHERE category = ? AND event_type = ?",
            ("ordering_order", SHIPPED)).fetchone()
        return int(row[0])

    async def cancellations(self) -> list[str]:
        rows = self._connection().execute(
            "SELECT data FROM invariant_events WHERE category = ? AND event_type = ?",
            ("ordering_order", CANCELLED)).fetchall()
        return [str(orjson.loads(data).get("reason")) for (data,) in rows]

    async def order_events(self) -> list[StoredEvent]:
        marks = ",".join("?" * len(CATEGORIES))
        rows = self._connection().execute(
            "SELECT stream_id, event_type, recorded_at FROM invariant_events "
            f"WHERE category IN ({marks}) ORDER BY position", CATEGORIES).fetchall()
        return [StoredEvent(_order_of(s), t, r / 1_000_000) for s, t, r in rows]

    async def relayed(self) -> list[Relayed]:
        rows = self._connection().execute(
            "SELECT m.stream_id, m.body, m.published_at, i.handled_at"
            " FROM invariant_broker_messages m JOIN invariant_inbox i"
            " ON i.message_id = m.message_id AND i.consumer = ?"
            " WHERE m.stream_id LIKE 'ordering_order-%'", (NOTIFICATIONS,)).fetchall()
        found = []
        for stream_id, body, published, handled in rows:
            message_type = orjson.loads(body)["type"]
            if message_type in ("order.placed", "order.shipped"):
                found.append(Relayed(_order_of(stream_id), message_type, published / 1e6,
                                     handled / 1e6))
        return found

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class PostgresEventLog:
    """Shop's PostgreSQL schema, read over a connection of its own."""

    def __init__(self, dsn: str, schema: str) -> None:
        self.dsn = dsn
        self.schema = schema
        self._conn: asyncpg.Connection | None = None

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None:
            self._conn = await asyncpg.connect(self.dsn, timeout=10)
        return self._conn

    async def shipped(self) -> int:
        conn = await self._connection()
        return int(await conn.fetchval(
            f"SELECT count(*) FROM {self.schema}.invariant_events "
            "WHERE category = $1 AND event_type = $2", "ordering_order", SHIPPED))

    async def cancellations(self) -> list[str]:
        conn = await self._connection()
        rows = await conn.fetch(
            f"SELECT data FROM {self.schema}.invariant_events "
            "WHERE category = $1 AND event_type = $2", "ordering_order", CANCELLED)
        return [str(orjson.loads(r["data"]).get("reason")) for r in rows]

    async def order_events(self) -> list[StoredEvent]:
        conn = await self._connection()
        rows = await conn.fetch(
            f"SELECT stream_id, event_type, recorded_at FROM {self.schema}.invariant_events "
            "WHERE category = ANY($1::text[]) ORDER BY position", list(CATEGORIES))
        return [StoredEvent(_order_of(r["stream_id"]), r["event_type"],
                            r["recorded_at"].timestamp()) for r in rows]

    async def relayed(self) -> list[Relayed]:
        """From the outbox (PostgreSQL keeps a published row with its ``published_at``)
        and the notifications consumer's inbox; the broker itself keeps no times."""
        conn = await self._connection()
        rows = await conn.fetch(
            f"SELECT o.stream_id, o.message_type, o.published_at, i.handled_at"
            f" FROM {self.schema}.invariant_outbox o JOIN {self.schema}.invariant_inbox i"
            " ON i.message_id = o.message_id::text AND i.consumer = $1"
            " WHERE o.stream_id LIKE 'ordering_order-%' AND o.published_at IS NOT NULL"
            " AND o.message_type IN ('order.placed', 'order.shipped')", NOTIFICATIONS)
        return [Relayed(_order_of(r["stream_id"]), r["message_type"],
                        r["published_at"].timestamp(), r["handled_at"] / 1e6) for r in rows]

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


@dataclass(frozen=True, slots=True)
class Mail:
    """One email the sink received: to whom, its subject, when (seconds since the epoch)."""

    to: str
    subject: str
    received: float
    path: Path


@dataclass
class MailSink:
    """The sink's directory, read incrementally: each file is parsed once (headers only)."""

    directory: Path
    mails: dict[str, Mail] = field(default_factory=dict)

    def scan(self) -> list[Mail]:
        """Every email so far, oldest first."""
        parser = email.parser.BytesHeaderParser(policy=email.policy.default)
        if self.directory.is_dir():
            for path in self.directory.glob("*.eml"):
                if path.name in self.mails:
                    continue
                named = _SINK_NAME.match(path.name)
                if named is None:
                    raise ValueError(f"{path}: not named as the mail sink names its files")
                when = datetime.strptime(named["time"], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)
                with path.open("rb") as f:
                    headers = parser.parse(f)
                self.mails[path.name] = Mail(str(headers["To"]), str(headers["Subject"]),
                                             when.timestamp(), path)
        return sorted(self.mails.values(), key=lambda m: m.received)

    def order_mails(self) -> dict[str, dict[str, list[float]]]:
        """Order id → email kind (``order_placed``, ``order_shipped``, ``order_cancelled``)
        → when each such email arrived."""
        found: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for mail in self.scan():
            matched = _ORDER_SUBJECT.match(mail.subject)
            if matched is not None:
                found[matched["order"]][KINDS[matched["word"]]].append(mail.received)
        return found

    def count(self, kind: str) -> int:
        """How many order emails of ``kind`` arrived so far."""
        return sum(len(kinds.get(kind, ())) for kinds in self.order_mails().values())

    def body_of(self, to: str, subject: str) -> str | None:
        """The plain text of the newest email to ``to`` with ``subject`` (None: none yet)."""
        for mail in reversed(self.scan()):
            if mail.to == to and mail.subject == subject:
                message = email.message_from_bytes(mail.path.read_bytes(),
                                                   policy=email.policy.default)
                assert isinstance(message, email.message.EmailMessage)
                body = message.get_body(preferencelist=("plain",))
                return None if body is None else str(body.get_content())
        return None
