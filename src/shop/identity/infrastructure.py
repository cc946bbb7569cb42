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
from datetime import UTC, datetime
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
    bindparam,
    delete,
    insert,
    inspect,
    select,
    tuple_,
    update,
)
from sqlalchemy.exc import DBAPIError

from invariant.domain import ConcurrencyError, StoreError, UniquenessError
from invariant.messaging.published_language import IntegrationEvent
from invariant.sql.database import ReadModelDatabase, dialect_insert
from invariant.sql.errors import unique_violation
from invariant.sql.outbox_table import outbox_table, outbox_written
from invariant.sql.types import Moment
from shop.identity.application import SOURCE_LENGTH, AccountSession
from shop.identity.domain import (
    Account,
    GuessCount,
    Guesses,
    PendingCode,
    email_key,
)
from shop.identity.published import SOURCE
from shop.kernel import CustomerId
from shop.platform.auth import AccountAccess

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
    Column("token_version", Integer, nullable=False, server_default="0"),
)
password_guesses = Table(
    "identity_password_guesses", metadata,
    Column("email_key", String(320), primary_key=True),
    Column("source", String(SOURCE_LENGTH), primary_key=True),
    Column("guesses", Integer, nullable=False),
    Column("last_at", Moment()),
    Column("trusted_until", Moment()),
    Column("forget_at", Moment(), nullable=False, index=True),
)
"""Password guesses per email key (known or not) and address, and per email key from all
addresses (``source`` :data:`ACCOUNT_WIDE`); a row is deleted after ``forget_at``."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ACCOUNT_WIDE = "*"
"""The ``source`` of an email's account-wide count (no client address is ``*``)."""
STALE_ROWS_PER_GUESS = 2
"""Forgotten rows each guess deletes: as many as a guess may add, so that guesses from
ever new addresses and emails cannot grow the table without bound."""
_outbox = outbox_table(MetaData())
T = TypeVar("T")


class SqlAccountSession:
    """Accounts in one database transaction (see :class:`~shop.identity.application.
    AccountSession`)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def guesses(self, key: str, source: str) -> Guesses:
        # The account-wide row first, then the address's: one order for every guess, so
        # two concurrent guesses never hold one row each while waiting for the other.
        account, _ = self._locked_count(key, ACCOUNT_WIDE)
        count, trusted_until = self._locked_count(key, source)
        return Guesses(count, account, trusted_until)

    def _locked_count(self, key: str, source: str) -> tuple[GuessCount, datetime | None]:
        """The row of (``key``, ``source``), made if missing, locked until the transaction
        ends: an upsert that changes nothing waits for (and then blocks) every concurrent
        guess on the row, on PostgreSQL as on SQLite (whose write lock serializes anyway)."""
        t = password_guesses
        upsert = dialect_insert(self.conn.dialect.name, t).values(
            email_key=key, source=source, guesses=0, last_at=None, trusted_until=None,
            forget_at=_EPOCH)
        row = self.conn.execute(upsert.on_conflict_do_update(
            index_elements=[t.c.email_key, t.c.source], set_={"guesses": t.c.guesses},
        ).returning(t.c.guesses, t.c.last_at, t.c.trusted_until)).one()
        return GuessCount(row.guesses, row.last_at), row.trusted_until

    def save_guesses(self, key: str, source: str, guesses: Guesses) -> None:
        self._save_count(key, ACCOUNT_WIDE, guesses.account, None)
        self._save_count(key, source, guesses.source, guesses.trusted_until)

    def _save_count(self, key: str, source: str, count: GuessCount,
                    trusted_until: datetime | None) -> None:
        t = password_guesses
        # Of use until its count is forgotten and its trust is over, whichever is later.
        forget_at = max((m for m in (count.forgotten_at, trusted_until) if m is not None),
                        default=_EPOCH)
        self.conn.execute(update(t).where(t.c.email_key == key, t.c.source == source).values(
            guesses=count.guesses, last_at=count.last_at, trusted_until=trusted_until,
            forget_at=forget_at))

    def forget_guesses(self, now: datetime) -> None:
        t = password_guesses
        stale = (select(t.c.email_key, t.c.source).where(t.c.forget_at < now)
                 .order_by(t.c.forget_at).limit(STALE_ROWS_PER_GUESS))
        if self.conn.dialect.name == "postgresql":
            stale = stale.with_for_update(skip_locked=True)  # never wait for a guess
        self.conn.execute(delete(t).where(tuple_(t.c.email_key, t.c.source).in_(stale)))

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
        outbox_written(self.conn)


class SqlAccountStore:
    """Accounts in ``identity_accounts`` of shop's database, each use case one transaction
    of ``database`` (on SQLite: on the event loop's thread, like every other writer there,
    so that no transaction holds the write lock while waiting for the loop)."""

    def __init__(self, database: ReadModelDatabase) -> None:
        self.database = database

    async def run(self, work: Callable[[AccountSession], T]) -> T:
        return await self.database.run(lambda conn: work(SqlAccountSession(conn)))


_ACCESS = select(accounts.c.role, accounts.c.token_version).where(
    accounts.c.id == bindparam("user_id"))
"""Built once: it runs on every request that carries a token."""


class SqlAccountDirectory:
    """The accounts access tokens are checked against (shop's
    :class:`~shop.platform.auth.AccountDirectory`): one primary-key read per request, of
    the role and the token version, from the database itself, so a revocation is seen at
    once by every process of the shop (no cache to fall behind)."""

    def __init__(self, database: Callable[[], ReadModelDatabase]) -> None:
        self._database = database

    async def access(self, user_id: str) -> AccountAccess | None:
        row = await self._database().run(
            lambda conn: conn.execute(_ACCESS, {"user_id": user_id}).first(), write=False)
        if row is None:
            return None
        return AccountAccess("admin" if row.role == "admin" else "customer", row.token_version)


def upgrade(conn: Connection) -> None:
    """Bring an older shop's accounts table up to date (``create_all`` makes missing
    tables, never missing columns): add ``token_version``, 0 for every account (their old
    tokens carry no version and stop working). Additive only: an older shop still running
    on this database during the upgrade keeps working (its ``identity_login_failures``
    table is left to it; drop it once no older shop runs)."""
    columns = {c["name"] for c in inspect(conn).get_columns(accounts.name)}
    if "token_version" not in columns:
        # IF NOT EXISTS: two PostgreSQL processes may start at once (SQLite's write lock,
        # held by this transaction since before the look, keeps its check true).
        if_missing = "IF NOT EXISTS " if conn.dialect.name == "postgresql" else ""
        conn.exec_driver_sql(f"ALTER TABLE {accounts.name} ADD COLUMN {if_missing}"
                             "token_version INTEGER NOT NULL DEFAULT 0")


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
        "token_version": account.token_version,
    }


def _account(row: Any) -> Account:
    code = None
    if row["code_digest"] is not None:
        code = PendingCode(row["code_digest"], row["code_issued_at"], row["code_expires_at"],
                           row["code_wrong_tries"])
    return Account(CustomerId(row["id"]), row["email"], row["role"], row["password_hash"],
                   row["registered_at"], row["verified_at"], code, row["version"],
                   row["token_version"])


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
