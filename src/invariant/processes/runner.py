"""Runs process managers: follow the event log, fire deadlines, dispatch their commands.

A page of events is handled in one transaction that re-reads (on PostgreSQL, locks) the
manager's checkpoint in ``invariant_process_checkpoints``, skips the events the checkpoint
has passed, stores each process's new state and the commands it decided, and moves the
checkpoint to the page's last event. A crash loses at most the page in flight, which is
handled again after the restart; nothing is handled twice. When a page fails, its events
are handled again one transaction each, so the events before the failing one are kept and
the error names the event that failed. Commands are dispatched after the commit (at least
once; deterministic command ids make repeats harmless).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from invariant.application.bus import CommandBus
from invariant.application.messages import Command
from invariant.backlog import Waiting
from invariant.clock import Clock, utc_now
from invariant.domain.errors import ConfigurationError, StoreError
from invariant.domain.events import DomainEvent
from invariant.processes import persistence
from invariant.processes.dispatch import (
    PROCESS_RETRY,
    CommandCodec,
    CommandDispatcher,
    Forward,
    store_sent,
)
from invariant.processes.manager import ProcessManager, decide_event
from invariant.processes.timeouts import fire_due
from invariant.retry import RetryPolicy
from invariant.sql.database import ReadModelDatabase
from invariant.sql.locks import serialize
from invariant.store.event_store import EventEnvelope, EventStore
from invariant.tasks import stop_task

_log = logging.getLogger("invariant.processes")


async def setup_tables(database: ReadModelDatabase, managers: Iterable[str] = ()) -> None:
    """Create the processes' tables and the checkpoints of ``managers`` (idempotent; safe
    from several workers at once)."""
    names = list(managers)

    def create(conn: Connection) -> None:
        serialize(conn, database, "processes-setup")  # several workers starting at once
        persistence.metadata.create_all(conn)
        for name in names:
            persistence.register(conn, name)

    await database.run(create)


class ProcessRunner:
    """Keeps ``managers`` up to date with ``store``'s log and dispatches their commands.

    In a host that runs only some of an application's modules (a service), the events a
    manager handles may be stored by other services: ``local_events`` names the types this
    host's log holds (None: every type), and the others reach the manager through
    :meth:`decide` (e.g. from the broker, see :class:`invariant.hosting.ProcessFeed`).
    Likewise ``local_commands`` names the commands this host's bus handles; the others
    are given to ``forward``."""

    def __init__(
        self,
        store: EventStore,
        database: ReadModelDatabase,
        bus: CommandBus,
        managers: Sequence[ProcessManager],
        *,
        commands: Iterable[type[Command[Any]]],
        clock: Clock = utc_now,
        page_size: int = 500,
        idle_recheck: float = 5.0,
        dispatch_retry: RetryPolicy | None = None,
        local_events: Collection[str] | None = None,
        local_commands: Collection[str] | None = None,
        forward: Forward | None = None,
    ) -> None:
        kinds = [m.kind for m in managers]
        if len(set(kinds)) != len(kinds):
            raise ConfigurationError(f"process managers registered twice: {sorted(kinds)}")
        self.store = store
        self.database = database
        self.managers = {m.kind: m for m in managers}
        self.codec = CommandCodec({*commands, *(c for m in managers for c in m.sends)})
        self.clock = clock
        self.page_size = page_size
        self.idle_recheck = idle_recheck
        self.local_events = None if local_events is None else frozenset(local_events)
        self.dispatcher = CommandDispatcher(database, bus, self.codec, retry=dispatch_retry,
                                            clock=clock, local=local_commands,
                                            forward=forward)
        self._positions = {m.kind: 0 for m in managers}
        self._nudged = asyncio.Event()
        # Which of each manager's types this log holds is fixed: sorted out once, not per
        # catch-up and per wait.
        self._logged = {m.kind: [t for t in m.handles if self.local_events is None
                                 or t.event_type in self.local_events] for m in managers}
        self._logged_names = {kind: [t.event_type for t in types]
                              for kind, types in self._logged.items()}
        self._hears_others = any(self.remote(m) for m in managers)

    def logged(self, manager: ProcessManager) -> list[type[DomainEvent]]:
        """The event types of ``manager`` that this host's log holds."""
        return self._logged[manager.kind]

    def remote(self, manager: ProcessManager) -> list[type[DomainEvent]]:
        """The event types of ``manager`` stored by other services (see :meth:`decide`)."""
        logged = set(self._logged[manager.kind])
        return [t for t in manager.handles if t not in logged]

    def decide(self, conn: Connection, kind: str, event: DomainEvent) -> None:
        """Let manager ``kind`` decide on ``event`` in the caller's transaction (an event
        that does not come from this host's log); :meth:`nudge` after the commit."""
        decide(conn, self.managers[kind], self.codec, event, self.clock())

    def nudge(self) -> None:
        """Wake :meth:`run`: commands or decisions were stored outside the log's wake-up."""
        self._nudged.set()

    async def setup(self) -> None:
        """Create the tables and register every manager's checkpoint."""
        await setup_tables(self.database, self.managers)

    async def run_once(self) -> int:
        """Handle every event up to the head, fire due deadlines, dispatch the commands;
        repeat until nothing is left. Returns the number of things done."""
        total = 0
        while True:
            done = 0
            for manager in self.managers.values():
                done += await self.catch_up(manager)
            done += await self.fire_timeouts()
            done += await self.dispatcher.dispatch_pending()
            total += done
            if done == 0:
                return total

    async def fire_timeouts(self, now: datetime | None = None) -> int:
        """Fire the deadlines due at ``now`` (default: the clock's time)."""
        return await fire_due(self.database, self.managers, self.codec, now or self.clock())

    async def catch_up(self, manager: ProcessManager) -> int:
        """Handle the manager's events after its checkpoint; returns how many."""
        types = self._logged_names[manager.kind]
        if not types:
            return 0
        kind = manager.kind
        position = await self.database.run(lambda c: persistence.checkpoint(c, kind),
                                           write=False)
        # Refresh the store's readable head (PostgreSQL reads up to a cached safe head): a
        # short page below then means every handled event up to it has been seen.
        head = await self.store.storage.head_position()
        handled = 0
        while True:
            envelopes = await self.store.read_all(after_position=position,
                                                  limit=self.page_size, event_types=types)
            if envelopes:
                await self._handle_page(manager, envelopes)
                handled += len(envelopes)
                position = envelopes[-1].position
            if len(envelopes) < self.page_size:
                self._positions[kind] = max(position, head)
                return handled

    async def _handle_page(self, manager: ProcessManager, envelopes: Sequence[EventEnvelope]
                           ) -> None:
        try:
            await self.database.run(_HandlePage(manager, envelopes, self.codec, self.clock()))
        except Exception:
            if len(envelopes) == 1:
                raise
            for envelope in envelopes:  # keeps those before the failing event, raises at it
                await self.database.run(_HandlePage(manager, [envelope], self.codec,
                                                    self.clock()))

    async def run(self) -> None:
        """Follow the log forever (until cancelled); waits for commits or the next deadline."""
        attempt = 0
        while True:
            try:
                self._nudged.clear()
                await self.run_once()
                attempt = 0
                await self._wait(await self._idle_timeout())
            except (StoreError, OSError, SQLAlchemyError) as exc:
                attempt += 1
                delay = PROCESS_RETRY.delay(attempt)
                _log.error("process runner: %s; retrying in %.1f s", exc, delay, exc_info=exc)
                await asyncio.sleep(delay)

    async def _wait(self, timeout: float) -> None:  # noqa: ASYNC109
        """Until a commit to the log, a nudge, or ``timeout``."""
        commit = self.store.storage.wait_for_commit(min(self._positions.values(), default=0),
                                                    timeout)
        if not self._hears_others:
            await commit  # nothing but the log wakes it
            return
        waits = [asyncio.create_task(commit), asyncio.create_task(self._nudged.wait())]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                await stop_task(waiting)

    async def backlog(self) -> int:
        """Work waiting for this runner: the events after the slowest manager's position
        (every type, up to the head) and the commands not dispatched yet.

        A manager's position is its checkpoint, or the head this runner last read up to
        when that is further: the checkpoint moves only with the events a manager handles,
        so the events of other types after its last one would otherwise count as waiting
        for ever (and hold an application's intake that waits for its backlog)."""
        kinds = list(self.managers)
        head = await self.store.storage.head_position()
        checkpoints, commands = await self.database.run(
            lambda c: persistence.backlog(c, kinds), write=False)
        slowest = min((max(checkpoints.get(kind, 0), self._positions[kind]) for kind in kinds),
                      default=head)
        return max(head - slowest, 0) + commands

    async def waiting(self) -> Waiting:
        """:meth:`backlog`, and how long its oldest item has waited: the first event after
        the slowest manager's position (since it was recorded) or the oldest command not
        dispatched (since it was decided), whichever is older. A measure of
        :class:`~invariant.backlog.Backlog`."""
        kinds = list(self.managers)
        head = await self.store.storage.head_position()
        checkpoints, commands, decided = await self.database.run(
            lambda c: persistence.waiting(c, kinds), write=False)
        slowest = min((max(checkpoints.get(kind, 0), self._positions[kind]) for kind in kinds),
                      default=head)
        oldest: list[datetime] = [] if decided is None else [decided]
        if head > slowest:
            first = await self.store.storage.read_all(after_position=slowest, limit=1)
            oldest += [r.recorded_at for r in first]
        now = self.clock()
        return Waiting(max(head - slowest, 0) + commands,
                       max((max((now - t).total_seconds(), 0.0) for t in oldest), default=0.0))

    async def _idle_timeout(self) -> float:
        kinds = list(self.managers)
        deadline = await self.database.run(lambda c: persistence.next_deadline(c, kinds),
                                           write=False)
        if deadline is None:
            return self.idle_recheck
        return max(0.01, min(self.idle_recheck, (deadline - self.clock()).total_seconds()))


class _HandlePage:
    """One page's transaction (see the module docstring)."""

    def __init__(self, manager: ProcessManager, envelopes: Sequence[EventEnvelope],
                 codec: CommandCodec, now: datetime) -> None:
        self.manager, self.envelopes, self.codec, self.now = manager, envelopes, codec, now

    def __call__(self, conn: Connection) -> None:
        kind = self.manager.kind
        reached = persistence.checkpoint(conn, kind, lock=True)
        todo = [e for e in self.envelopes if e.position > reached]  # others: another
        if not todo:                                                  # worker handled them
            return
        if len(todo) == 1:
            decide(conn, self.manager, self.codec, todo[0].event, self.now)
        else:
            self._decide_page(conn, [e.event for e in todo])
        persistence.move_checkpoint(conn, kind, todo[-1].position)

    def _decide_page(self, conn: Connection, events: Sequence[DomainEvent]) -> None:
        """The page's events applied in order, at the same few statements whatever their
        number: their processes read (and locked) in one, their new states stored in one
        insert and one upsert, the commands they decided in one insert."""
        manager, now = self.manager, self.now
        correlated = [(event, manager.correlate(event)) for event in events]
        records = persistence.find_many(
            conn, manager.kind, {c for _, c in correlated if c is not None}, lock=True)
        read = {record.id: record.version for record in records.values()}
        changed: dict[str, persistence.ProcessRecord] = {}
        commands: list[dict[str, Any]] = []
        for event, correlation in correlated:
            if correlation is None:
                continue
            process = decide_event(manager, records.get(correlation), event, correlation,
                                   now)
            if process is None:
                continue
            record = records[correlation] = persistence.advance(process.record, now)
            changed[record.id] = record
            commands.extend(persistence.command_row(record.id, str(s.command.command_id),
                                                    *self.codec.encode(s.command), now)
                            for s in process.sent)
        persistence.write_many(conn, read, list(changed.values()), now)
        persistence.enqueue_many(conn, commands)


def decide(conn: Connection, manager: ProcessManager, codec: CommandCodec, event: DomainEvent,
           now: datetime) -> None:
    """Apply ``event`` to its process in the caller's transaction: the new state and the
    commands it decided are stored together."""
    correlation = manager.correlate(event)
    if correlation is None:
        return
    record = persistence.find(conn, manager.kind, correlation, lock=True)
    process = decide_event(manager, record, event, correlation, now)
    if process is not None:
        persistence.write(conn, process.record, now)
        store_sent(conn, codec, process.id, process.sent, now)
