"""identity's adapters: the accounts table (with the outbox, in one transaction), argon2id
password hashing and the keyed digest one-time codes are stored as.

Accounts are state-stored in ``identity_accounts``: one row per account, an optimistic
``version``, the email's lower-cased form unique (``email_key``). The row holds the
password's argon2id hash and the pending code's HMAC digest; nothing secret leaves it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import argon2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    case,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError

from invariant.domain import ConcurrencyError, StoreError, UniquenessError
from invariant.messaging.published_language import IntegrationEvent
from invariant.sql.database import ReadModelDatabase, dialect_insert
from invariant.sql.errors import unique_violation
from invariant.sql.outbox_table import outbox_table
from invariant.sql.types import Moment
from shop.identity.application import AccountSession
from shop.identity.domain import (
    LOGIN_LOCKOUT,
    LOGIN_WINDOW,
    MAX_LOGIN_FAILURES,
    Account,
    PendingCode,
    email_key,
)
from shop.identity.published import SOURCE
from shop.kernel import CustomerId

metadata = MetaData()
accounts = Table(
    "identity_accounts", metadata,
    Column("id", String(36), primary_key=True),
    Column("email", String(320), nullable=False),
    Column("email_key", String(320), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("registered_at", Moment(), nullable=False),
    Column("verified_at", Moment()),
    Column("code_digest", String(64)),
    Column("code_issued_at", Moment()),
    Column("code_expires_at", Moment()),
    Column("code_wrong_tries", Integer, nullable=False, default=0),
    Column("version", Integer, nullable=False),
)
login_failures = Table(
    "identity_login_failures", metadata,
    Column("email_key", String(320), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_started", Moment(), nullable=False),
    Column("locked_until", Moment()),
)
"""Wrong passwords per email key (known or not) in the current window, and the lock."""
_outbox = outbox_table(MetaData())
T = TypeVar("T")


class SqlAccountSession:
    """Accounts in one database transaction (see :class:`~shop.identity.application.
    AccountSession`)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def login_locked_until(self, key: str) -> datetime | None:
        t = login_failures
        found: datetime | None = self.conn.execute(
            select(t.c.locked_until).where(t.c.email_key == key)).scalar()
        return found

    def login_failed(self, key: str, now: datetime) -> None:
        t = login_failures
        fresh = t.c.window_started < now - LOGIN_WINDOW  # the last window is over
        upsert = dialect_insert(self.conn.dialect.name, t).values(
            email_key=key, failures=1, window_started=now, locked_until=None)
        failures = self.conn.execute(upsert.on_conflict_do_update(
            index_elements=[t.c.email_key],
            set_={"failures": case((fresh, 1), else_=t.c.failures + 1),
                  "window_started": case((fresh, literal(now, t.c.window_started.type)),
                                         else_=t.c.window_started)},
        ).returning(t.c.failures)).scalar_one()
        if failures >= MAX_LOGIN_FAILURES:  # locked; counting starts again after it
            self.conn.execute(update(t).where(t.c.email_key == key).values(
                failures=0, window_started=now, locked_until=now + LOGIN_LOCKOUT))

    def login_succeeded(self, key: str) -> None:
        self.conn.execute(login_failures.delete().where(login_failures.c.email_key == key))

    def by_email(self, email: str) -> Account | None:
        return self._one(accounts.c.email_key == email_key(email))

    def get(self, user_id: CustomerId) -> Account | None:
        return self._one(accounts.c.id == user_id.value)

    def _one(self, condition: Any) -> Account | None:
        query = select(accounts).where(condition)
        if self.conn.dialect.name == "postgresql":
            query = query.with_for_update()  # SQLite: the transaction holds the write lock
        row = self.conn.execute(query).mappings().first()
        return None if row is None else _account(row)

    def add(self, account: Account) -> None:
        try:
            self.conn.execute(insert(accounts).values(
                id=account.id.value, version=1, **_row(account)))
        except DBAPIError as exc:
            if unique_violation(exc, accounts) is not None:
                raise UniquenessError("account", ("email",)) from None
            raise StoreError(f"storing the account failed: {exc.orig}") from exc
        account.version = 1

    def save(self, account: Account) -> None:
        result = self.conn.execute(
            update(accounts)
            .where(accounts.c.id == account.id.value, accounts.c.version == account.version)
            .values(version=account.version + 1, **_row(account)))
        if result.rowcount != 1:
            raise ConcurrencyError(f"identity_accounts-{account.id}", account.version, -1)
        account.version += 1

    def publish(self, event: IntegrationEvent, user_id: CustomerId, now: datetime) -> None:
        message = event.to_outbox(source=SOURCE, stream_id=f"identity-{user_id}",
                                  occurred_at=now)
        self.conn.execute(insert(_outbox).values(
            message_id=message.message_id, stream_id=message.stream_id,
            message_type=message.message_type, schema_version=message.schema_version,
            position=None, data=message.data, metadata=message.metadata, created_at=now,
            published_at=None))


class SqlAccountStore:
    """Accounts in ``identity_accounts`` of shop's database, each use case one transaction
    of ``database`` (on SQLite: on the event loop's thread, like every other writer there,
    so that no transaction holds the write lock while waiting for the loop)."""

    def __init__(self, database: ReadModelDatabase) -> None:
        self.database = database

    async def run(self, work: Callable[[AccountSession], T]) -> T:
        return await self.database.run(lambda conn: work(SqlAccountSession(conn)))


def _row(account: Account) -> dict[str, Any]:
    code = account.code
    return {
        "email": account.email, "email_key": account.key, "role": account.role,
        "password_hash": account.password_hash, "registered_at": account.registered_at,
        "verified_at": account.verified_at,
        "code_digest": code.digest if code else None,
        "code_issued_at": code.issued_at if code else None,
        "code_expires_at": code.expires_at if code else None,
        "code_wrong_tries": code.wrong_tries if code else 0,
    }


def _account(row: Any) -> Account:
    code = None
    if row["code_digest"] is not None:
        code = PendingCode(row["code_digest"], row["code_issued_at"], row["code_expires_at"],
                           row["code_wrong_tries"])
    return Account(CustomerId(row["id"]), row["email"], row["role"], row["password_hash"],
                   row["registered_at"], row["verified_at"], code, row["version"])


class Argon2Passwords:
    """argon2id with OWASP's minimum parameters (19 MiB, 2 passes, 1 lane), hashed in a
    worker thread so that the event loop keeps serving other requests."""

    def __init__(self, *, time_cost: int = 2, memory_cost: int = 19 * 1024,
                 parallelism: int = 1) -> None:
        self._hasher = argon2.PasswordHasher(time_cost=time_cost, memory_cost=memory_cost,
                                             parallelism=parallelism, type=argon2.Type.ID)
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        if password_hash is None:  # as slow as a real check: timing tells nothing
            if self._dummy is None:
                self._dummy = await self.hash("no such account")
            password_hash = self._dummy
            await asyncio.to_thread(self._check, password_hash, password)
            return False
        return await asyncio.to_thread(self._check, password_hash, password)

    def _check(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False


class HmacCodeDigest:
    """HMAC-SHA256 of ``user_id:code`` under a key derived from the shop's secret: a
    6-digit code has too few possibilities for a plain (even slow) hash to hide it, a
    keyed digest cannot be brute-forced without the secret."""

    def __init__(self, secret: str) -> None:
        self._key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                         info=b"shop identity: one-time code digests v1").derive(
                             secret.encode())

    def __call__(self, user_id: str, code: str) -> str:
        return hmac.new(self._key, f"{user_id}:{code}".encode(), hashlib.sha256).hexdigest()
