"""Given/when/then for process managers and sagas, with a clock the test controls.

Process managers are tested as the decisions they make, without a database::

    scenario = ProcessScenario(OrderFulfilment(), clock=ManualClock())
    scenario.given(OrderPlaced(...)).when(PaymentDeclined(...))
    scenario.then_sent(ChargePayment(order_id="o-1", amount=100, attempt=2))
    scenario.then_state(phase="payment", attempt=2)
    scenario.when_time_passes(seconds=31).then_sent(...)

Sagas are tested with :class:`SagaScenario`: a real orchestrator on a temporary SQLite file,
a command sender that records what the steps send and answers as told, and no real sleeps::

    async with SagaScenario(ORDER_SAGA) as s:
        s.replying(ShipOrder, False)                      # the carrier refuses
        await s.when_started("saga-1", {...})
        s.then_sent(PlaceOrder(...), ..., CancelShipment(...)...).then_status(FAILED)
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, cast

from invariant.application.messages import Command, CommandResult
from invariant.domain.events import DomainEvent
from invariant.processes.manager import (
    ProcessManager,
    decide_event,
    decide_timeouts,
)
from invariant.processes.persistence import ProcessRecord
from invariant.processes.saga import Saga, SagaOrchestrator
from invariant.sql.database import SQLiteReadModels
from invariant.testing.clock import ManualClock

R = TypeVar("R")


def _comparable(command: Command[Any]) -> tuple[type[Command[Any]], dict[str, Any]]:
    fields = {f.name: getattr(command, f.name) for f in dataclasses.fields(command)
              if f.name != "command_id"}
    return type(command), fields


class ProcessScenario:
    """Feeds events and time to one process manager and checks what it decided.

    Each ``when`` keeps only the commands decided by that step (``given`` forgets them).
    Events are correlated as the runner does; processes are kept in memory by correlation.
    """

    def __init__(self, manager: ProcessManager, *, clock: ManualClock | None = None) -> None:
        self.manager = manager
        self.clock = clock or ManualClock()
        self.records: dict[str, ProcessRecord] = {}
        self.sent: list[Command[Any]] = []
        self.all_sent: list[Command[Any]] = []
        self._last: str | None = None

    # -- given / when --------------------------------------------------------------------

    def given(self, *events: DomainEvent) -> ProcessScenario:
        for event in events:
            self._apply(event)
        self.sent = []
        return self

    def when(self, *events: DomainEvent) -> ProcessScenario:
        self.sent = []
        for event in events:
            self._apply(event)
        return self

    def when_time_passes(self, **delta: float) -> ProcessScenario:
        """Advance the clock and fire every deadline that passed (once each)."""
        self.sent = []
        now = self.clock.advance(**delta)
        for record in list(self.records.values()):
            process = decide_timeouts(self.manager, record, now)
            if process is not None:
                record.version += 1
                self._sent([s.command for s in process.sent])
        return self

    def _apply(self, event: DomainEvent) -> None:
        correlation = self.manager.correlate(event)
        if correlation is None:
            return
        record = self.records.get(correlation)
        process = decide_event(self.manager, record, event, correlation, self.clock())
        if process is None:
            return
        process.record.version += 1
        self.records[correlation] = process.record
        self._last = correlation
        self._sent([s.command for s in process.sent])

    def _sent(self, commands: Sequence[Command[Any]]) -> None:
        self.sent.extend(commands)
        self.all_sent.extend(commands)

    # -- then ----------------------------------------------------------------------------

    def process(self, correlation: str | None = None) -> ProcessRecord:
        """The process of ``correlation`` (default: the one the last event reached)."""
        key = correlation if correlation is not None else self._last
        if key is None or key not in self.records:
            raise AssertionError(f"no process for correlation {key!r}")
        return self.records[key]

    def then_sent(self, *commands: Command[Any]) -> ProcessScenario:
        """The last step sent exactly these commands, in order (command ids ignored;
        they are checked to be deterministic by :meth:`then_ids_are_deterministic`)."""
        got = [_comparable(c) for c in self.sent]
        want = [_comparable(c) for c in commands]
        if got != want:
            raise AssertionError(f"commands sent:\n  {self.sent}\nexpected:\n  {list(commands)}")
        return self

    def then_nothing_sent(self) -> ProcessScenario:
        return self.then_sent()

    def then_state(self, correlation: str | None = None, **expected: Any) -> ProcessScenario:
        """The process's state has these values (other keys are not compared)."""
        state = self.process(correlation).state
        wrong = {k: (state.get(k), v) for k, v in expected.items() if state.get(k) != v}
        if wrong:
            raise AssertionError(f"state differs (got, expected): {wrong}; state: {state}")
        return self

    def then_status(self, status: str, correlation: str | None = None) -> ProcessScenario:
        got = self.process(correlation).status
        if got != status:
            raise AssertionError(f"status is {got!r}, expected {status!r}")
        return self

    def then_deadlines(self, correlation: str | None = None, **seconds_from_now: float
                       ) -> ProcessScenario:
        """Exactly these deadlines are pending, each due that many seconds from now."""
        now = self.clock()
        got = {k: (v - now).total_seconds()
               for k, v in self.process(correlation).deadlines.items()}
        if got != seconds_from_now:
            raise AssertionError(f"deadlines (seconds from now): {got}, expected "
                                 f"{seconds_from_now}")
        return self

    def then_ids_are_deterministic(self) -> ProcessScenario:
        """No two commands sent so far share an id, and each id is the one derived from the
        process and decision key (so re-deciding after a crash sends the same ids)."""
        ids = [c.command_id for c in self.all_sent]
        if len(set(ids)) != len(ids):
            raise AssertionError(f"a command id was used twice: {ids}")
        return self



Reply = Any | Callable[[Command[Any]], Any]
"""What the fake sender answers: a value (the handler's return), an exception instance to
raise, or a function of the command returning either."""


class RecordingSender:
    """Records every command; answers each command id once (repeats get the first answer,
    as the command bus's idempotency does) with the reply configured for its type."""

    def __init__(self) -> None:
        self.sent: list[Command[Any]] = []
        self.handled: dict[Any, Any] = {}
        self.replies: dict[type[Command[Any]], list[Reply]] = {}

    async def dispatch(self, command: Command[R], *, metadata: Mapping[str, Any] | None = None
                       ) -> CommandResult[R]:
        """The reply configured for ``command``'s type (the caller configured it as the
        handler's ``R``)."""
        self.sent.append(command)
        if command.command_id in self.handled:
            return CommandResult(command.command_id, cast(R, self.handled[command.command_id]),
                                 0, {}, duplicate=True)
        queue = self.replies.get(type(command), [])
        reply = queue.pop(0) if len(queue) > 1 else (queue[0] if queue else None)
        value = reply(command) if callable(reply) else reply
        if isinstance(value, BaseException):
            raise value
        self.handled[command.command_id] = value
        return CommandResult(command.command_id, cast(R, value), 0, {})


class SagaScenario:
    """Runs one saga declaration on a temporary SQLite database with a recording sender."""

    def __init__(self, saga: Saga, *, clock: ManualClock | None = None) -> None:
        self.clock = clock or ManualClock()
        self._dir = Path(tempfile.mkdtemp(prefix="invariant-saga-"))
        self.database = SQLiteReadModels(self._dir / "saga.db")
        self.sender = RecordingSender()
        self.slept: list[float] = []
        self.orchestrator = SagaOrchestrator(saga, self.database, bus=self.sender,
                                             clock=self.clock, sleep=self._sleep)
        self.record: ProcessRecord | None = None
        self._mark = 0

    async def _sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.advance(seconds=seconds)

    async def __aenter__(self) -> SagaScenario:
        await self.orchestrator.setup()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.database.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def replying(self, command_type: type[Command[Any]], *replies: Reply) -> SagaScenario:
        """Answer commands of ``command_type`` with ``replies`` in turn (the last repeats);
        unconfigured commands are answered ``None`` (success)."""
        self.sender.replies[command_type] = list(replies)
        return self

    async def when_started(self, saga_id: str, data: Mapping[str, Any]) -> SagaScenario:
        self._mark = len(self.sender.sent)
        self.record = await self.orchestrator.execute(saga_id, data)
        return self

    async def when_resumed(self, saga_id: str) -> SagaScenario:
        """An operator resumed the parked saga (``invariant processes resume``)."""
        self._mark = len(self.sender.sent)
        self.record = await self.orchestrator.resume(saga_id)
        return self

    def then_sent(self, *commands: Command[Any]) -> SagaScenario:
        """The last ``when`` sent exactly these commands, in order (ids ignored)."""
        sent = self.sender.sent[self._mark:]
        if [_comparable(c) for c in sent] != [_comparable(c) for c in commands]:
            raise AssertionError(f"commands sent:\n  {sent}\nexpected:\n  {list(commands)}")
        return self

    def then_status(self, status: str) -> SagaScenario:
        got = None if self.record is None else self.record.status
        if got != status:
            error = None if self.record is None else self.record.error
            raise AssertionError(f"status is {got!r} (error: {error}), expected {status!r}")
        return self

    def then_state(self, **expected: Any) -> SagaScenario:
        if self.record is None:
            raise AssertionError("no saga has run yet")
        state = self.record.state
        wrong = {k: (state.get(k), v) for k, v in expected.items() if state.get(k) != v}
        if wrong:
            raise AssertionError(f"state differs (got, expected): {wrong}; state: {state}")
        return self
