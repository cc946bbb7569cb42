"""Idempotent consumers: each message handled in one transaction with its inbox row;
failures retried with exponential backoff, then parked in the dead-letter store.

A handler is a plain function ``(conn, message) -> None`` doing its effects through the
SQLAlchemy ``Connection`` it is given (the transaction that also records the inbox row).
Raise :class:`~invariant.messaging.errors.PermanentMessageError` (e.g. an unsupported
integration event version) to park a message without retrying.

A handler whose effects live in another store (counters in Redis) cannot share the inbox's
transaction: it is made by :func:`external` and applies each message at most once *by
itself*, keyed by the message id and atomic with the effect (e.g. a Lua script that records
the id and changes the counters together). The consumer retries and parks it like any
other; its own store, not the inbox, says whether a message was seen.

A consumer that names the message types it reads (``types=``, or a handler made by
:func:`subscribed`) declares its group with them: brokers that can filter deliver only
those, and any other type that still arrives is acknowledged without a transaction. A
body that is not a message at all arrives as :data:`~invariant.messaging.port.UNREADABLE`
(see :func:`~invariant.messaging.port.read_body`) and is parked with its bytes at once,
whatever types the consumer reads: the messages after it go on.

A fetched batch (a page) is handled in ONE transaction, on SQLite and PostgreSQL alike:
the page's inbox rows in one statement, then each new message's handler in publish order,
all committed together, and acknowledged only after that commit. One message after another on one
connection, so no handler's read-then-write loses another's update, and a page costs one
commit (one round trip each for the begin and commit on PostgreSQL) instead of one per
message. If the page's transaction fails (one message raises, or the commit does), nothing
of it was written, and the page is handled again one transaction per message, in the same
order: the failing message is retried and parked alone, the others land. A message
delivered twice in a page, or again after a crash between the commit and the
acknowledgements, finds its inbox row and changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Collection, Sequence

from sqlalchemy import Connection

from invariant.clock import utc_now
from invariant.messaging import deadletters, inbox
from invariant.messaging.errors import (
    BrokerError,
    MessagingError,
    PermanentMessageError,
    UnreadableMessageError,
)
from invariant.messaging.port import UNREADABLE, Broker, Delivery, Message
from invariant.retry import RetryPolicy
from invariant.sql.database import ReadModelDatabase
from invariant.sql.locks import create_tables
from invariant.tasks import sleep_or_stop
from invariant.telemetry.messages import consumed, consuming

SQLHandler = Callable[[Connection, Message], None]
ExternalApply = Callable[[Message], Awaitable[bool]]

HANDLED, DUPLICATE, PARKED, SKIPPED = "handled", "duplicate", "parked", "skipped"


class Subscribed:
    """A handler that says which message types it reads (see :func:`subscribed`)."""

    __slots__ = ("handler", "types")

    def __init__(self, handler: SQLHandler, types: Collection[str]) -> None:
        self.handler = handler
        self.types = frozenset(types)

    def __call__(self, conn: Connection, message: Message) -> None:
        self.handler(conn, message)


def subscribed(handler: SQLHandler, types: Collection[str]) -> Subscribed:
    """``handler``, reading only messages of ``types``: its consumer's group is declared
    with them, so the broker need not deliver the others."""
    if not types:
        raise MessagingError("a subscribed handler reads at least one message type")
    return Subscribed(handler, types)


class External:
    """A handler whose effects live outside the consumer's database (see :func:`external`)."""

    __slots__ = ("apply", "types")

    def __init__(self, apply: ExternalApply, types: Collection[str]) -> None:
        self.apply = apply
        self.types = frozenset(types)


def external(apply: ExternalApply, types: Collection[str]) -> External:
    """A handler of messages of ``types`` keeping its effects in another store:
    ``await apply(message)`` applies the message's effect unless that store has already
    recorded its id (checked and recorded atomically with the effect), and says whether it
    applied it now. Raising retries it, then parks it, as for any handler."""
    if not types:
        raise MessagingError("an external handler reads at least one message type")
    return External(apply, types)


Handler = SQLHandler | External
"""What a consumer runs per message: ``(conn, message)`` in the inbox's transaction, or an
:class:`External` handler idempotent in its own store."""


class Consumer:
    """Consumes group ``name`` of ``broker`` into ``database`` through ``handler``."""

    def __init__(self, name: str, database: ReadModelDatabase, handler: Handler, *,
                 backoff: RetryPolicy | None = None,
                 types: Collection[str] | None = None) -> None:
        self.name = name
        self.database = database
        self.handler = handler
        self.types: frozenset[str] | None = (
            frozenset(types) if types is not None
            else handler.types if isinstance(handler, Subscribed | External) else None)
        """The message types this consumer reads (None: every type)."""
        self.backoff = backoff or RetryPolicy(first_delay=0.1, max_delay=30.0)
        self.failures = 0
        """How many fetches failed (the broker was unreachable); ``last_error`` says why."""
        self.last_error: str | None = None
        self.outcomes: dict[str, int] = {HANDLED: 0, DUPLICATE: 0, PARKED: 0, SKIPPED: 0}
        """How many messages were handled, dropped as duplicates, parked, skipped as not
        read by this consumer (metrics)."""

    async def setup(self) -> None:
        """Create the inbox and dead-letter tables."""
        await self.database.run(lambda conn: create_tables(
            conn, self.database, inbox.create, deadletters.create))

    async def handle(self, message: Message) -> str:
        """Apply ``message`` once: ``handled``, ``duplicate`` or ``parked``."""
        outcome = await consumed(self.name, message, self._handle(message))
        self.outcomes[outcome] += 1
        return outcome

    async def _handle(self, message: Message) -> str:
        if message.message_type == UNREADABLE:
            return await self._park(message, UnreadableMessageError(
                f"{message.data.get('error')}; its bytes are kept in the dead letter, base64 "
                "under data.body"), 1)
        attempt = 0
        while True:
            attempt += 1
            try:
                if isinstance(self.handler, External):
                    return HANDLED if await self.handler.apply(message) else DUPLICATE
                return await self.database.run(lambda conn: self._apply(conn, message))
            except PermanentMessageError as exc:
                return await self._park(message, exc, attempt)
            except Exception as exc:
                if attempt >= self.backoff.attempts:
                    return await self._park(message, exc, attempt)
                await asyncio.sleep(self.backoff.delay(attempt))

    def _apply(self, conn: Connection, message: Message) -> str:
        assert not isinstance(self.handler, External)
        if not inbox.record(conn, self.name, message.message_id):
            return DUPLICATE
        self.handler(conn, message)
        return HANDLED

    async def _park(self, message: Message, exc: Exception, attempts: int) -> str:
        error = f"{type(exc).__name__}: {exc}"

        def park(conn: Connection) -> str:
            if not inbox.record(conn, self.name, message.message_id):
                return DUPLICATE
            deadletters.park(conn, self.name, message, error, attempts, utc_now())
            return PARKED
        return await self.database.run(park)

    async def replay(self, letter_id: int) -> None:
        """Handle a parked message again; on success it leaves the dead-letter store (in
        the same transaction as its effects; for an :class:`External` handler, once its
        store has it). Raises what the handler raises."""
        handler = self.handler

        def letter(conn: Connection) -> deadletters.DeadLetter:
            found = deadletters.get(conn, letter_id)
            if found is None or found.consumer != self.name:
                raise MessagingError(
                    f"no dead letter {letter_id} for consumer {self.name!r}: "
                    "see `invariant deadletters list`")
            if found.message.message_type == UNREADABLE:
                raise UnreadableMessageError(
                    f"dead letter {letter_id} is not an invariant message "
                    f"({found.message.data.get('error')}), so no handler can take it; read "
                    "its bytes (base64 under data.body) and discard it in the console")
            return found

        if isinstance(handler, External):
            await handler.apply((await self.database.run(letter, write=False)).message)
            await self.database.run(lambda conn: deadletters.remove(conn, letter_id))
            return

        def apply(conn: Connection) -> None:
            handler(conn, letter(conn).message)
            deadletters.remove(conn, letter_id)
        await self.database.run(apply)

    async def declare(self, broker: Broker) -> None:
        """Declare this consumer's group on ``broker``, with the types it reads."""
        await broker.declare(self.name, types=self.types)

    async def consume(self, broker: Broker, *, stop: asyncio.Event, batch: int = 100,
                      poll: float = 0.5) -> int:
        """Fetch, handle, then acknowledge until ``stop`` is set; messages handled."""
        await self.declare(broker)
        count = 0
        while not stop.is_set():
            try:
                deliveries = await broker.fetch(self.name, max_messages=batch, timeout=poll)
            except BrokerError as exc:
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                await sleep_or_stop(stop, poll)  # the adapter reconnects meanwhile
                continue
            count += await self.consume_batch(deliveries)
        return count

    async def consume_batch(self, deliveries: Sequence[Delivery]) -> int:
        """Handle ``deliveries`` in one transaction (one per message if that fails; see the
        module docstring), then acknowledge them all; how many were applied now. Nothing
        is acknowledged before every message of the batch is handled and committed: a
        broker whose acknowledgement moves an offset (Kafka) never skips a message still
        in hand."""
        # A body that is not a message is parked, bytes and all, whatever types are read.
        unreadable = [d.message for d in deliveries if d.message.message_type == UNREADABLE]
        wanted = [d.message for d in deliveries if d.message.message_type != UNREADABLE
                  and (self.types is None or d.message.message_type in self.types)]
        self.outcomes[SKIPPED] += len(deliveries) - len(wanted) - len(unreadable)
        outcomes = await self._handle_page(wanted) if len(wanted) > 1 else None
        if outcomes is None:  # one message, an external handler, or the page failed
            outcomes = [await self.handle(message) for message in wanted]
        else:
            for outcome in outcomes:
                self.outcomes[outcome] += 1
        for message in unreadable:
            await self.handle(message)
        await asyncio.gather(*(_acknowledge(d) for d in deliveries))
        return outcomes.count(HANDLED)

    async def _handle_page(self, messages: Sequence[Message]) -> list[str] | None:
        """The outcomes of ``messages`` handled in one transaction, or None when that
        transaction failed (then nothing of it was written)."""
        handler = self.handler
        if isinstance(handler, External):
            return None

        def page(conn: Connection) -> list[str]:
            new = inbox.record_many(conn, self.name, [m.message_id for m in messages])
            outcomes = []
            for message in messages:
                if message.message_id not in new:
                    outcomes.append(DUPLICATE)  # recorded before, or earlier in the page
                    continue
                new.discard(message.message_id)
                with consuming(self.name, message):
                    handler(conn, message)
                outcomes.append(HANDLED)
            return outcomes
        try:
            return await self.database.run(page)
        except Exception:  # handled again one message at a time, each for its own outcome
            return None

    async def consume_one(self, delivery: Delivery) -> int:
        """Handle then acknowledge one delivery (1 if its effects were applied now)."""
        return await self.consume_batch([delivery])


async def _acknowledge(delivery: Delivery) -> None:
    with contextlib.suppress(BrokerError):  # unacknowledged: redelivered, then a duplicate
        await delivery.ack()
