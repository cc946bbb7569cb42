"""Process managers: state machines correlated by a key taken from incoming events.

A process manager *decides*: given its state and an event (or a deadline that passed), it
changes its state, sends commands and sets or cancels deadlines. It does no I/O; the runner
stores the new state and the commands in one transaction (the commands in the processes'
outbox) and dispatches them afterwards. Its handlers are guards: an event that does not fit
the current state (a duplicate, one that arrives late or out of order) changes nothing.
"""

from __future__ import annotations

import dataclasses
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from invariant.application.messages import Command
from invariant.domain.events import DomainEvent
from invariant.processes.persistence import COMPLETED, ENDED, FAILED, NEEDS_ATTENTION, ProcessRecord

NAMESPACE = uuid.UUID("5b0f3c56-8f54-4a53-9d4e-3f6f1c0a7e11")


def command_id_for(process_id: str, key: str) -> uuid.UUID:
    """The deterministic id of the command a process sends under ``key``: a retried
    decision sends the same id, which the command bus handles once."""
    return uuid.uuid5(NAMESPACE, f"{process_id}/{key}")


@dataclass(frozen=True, slots=True)
class Sent:
    """A command a process decided to send, with the key its id was derived from."""

    key: str
    command: Command[Any]


class Process:
    """What a handler sees and changes: the state, the clock, commands and deadlines."""

    def __init__(self, record: ProcessRecord, now: datetime) -> None:
        self.record = record
        self.now = now
        self.sent: list[Sent] = []

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def correlation(self) -> str:
        return self.record.correlation

    @property
    def state(self) -> dict[str, Any]:
        """The process's own JSON-serializable data."""
        return self.record.state

    @property
    def status(self) -> str:
        return self.record.status

    def send(self, command: Command[Any], key: str) -> None:
        """Send ``command`` with an id derived from this process and ``key`` (make the key
        unique per decision, e.g. ``"charge/2"`` for the second payment attempt)."""
        cmd = dataclasses.replace(command, command_id=command_id_for(self.id, key))
        self.sent.append(Sent(key, cmd))

    def schedule(self, name: str, after: timedelta | float) -> datetime:
        """Set (or move) the deadline ``name``; :meth:`ProcessManager.timeout` is called once
        when it passes, unless cancelled first."""
        delta = after if isinstance(after, timedelta) else timedelta(seconds=after)
        at = self.now + delta
        self.record.deadlines[name] = at
        return at

    def cancel(self, name: str) -> bool:
        """Cancel the deadline ``name``; False if it was not pending."""
        return self.record.deadlines.pop(name, None) is not None

    def deadline(self, name: str) -> datetime | None:
        return self.record.deadlines.get(name)

    def complete(self) -> None:
        """End the process successfully (pending deadlines are dropped)."""
        self._end(COMPLETED, None)

    def fail(self, reason: str) -> None:
        """End the process as failed, with ``reason``."""
        self._end(FAILED, reason)

    def park(self, reason: str) -> None:
        """Stop and wait for an operator (``invariant processes resume``)."""
        self.record.status = NEEDS_ATTENTION
        self.record.error = reason

    def _end(self, status: str, error: str | None) -> None:
        self.record.status = status
        self.record.error = error
        self.record.deadlines.clear()


class ProcessManager(ABC):
    """Base for process managers. Subclasses set ``kind`` (stored with each process),
    ``handles`` (event types it reacts to), ``starts`` (those that may start a process) and
    ``sends`` (the commands it may send), and implement :meth:`correlate`, :meth:`handle`
    and, with deadlines, :meth:`timeout`."""

    kind: ClassVar[str]
    handles: ClassVar[tuple[type[DomainEvent], ...]]
    starts: ClassVar[tuple[type[DomainEvent], ...]] = ()
    sends: ClassVar[tuple[type[Command[Any]], ...]] = ()
    """The commands it may send. Those no module of its host handles are sent to the
    services that do, as messages (checked at start-up: each must be encodable)."""

    @abstractmethod
    def correlate(self, event: DomainEvent) -> str | None:
        """The key of the process ``event`` belongs to (e.g. the order id), or None."""

    def initial_state(self, event: DomainEvent) -> dict[str, Any]:
        """The state of a process started by ``event``."""
        return {}

    @abstractmethod
    def handle(self, process: Process, event: DomainEvent) -> None:
        """React to ``event``: change ``process.state``, send commands, set deadlines."""

    def timeout(self, process: Process, name: str) -> None:
        """The deadline ``name`` passed before it was cancelled (default: park the process,
        so a deadline nobody handles is visible rather than forgotten)."""
        process.park(f"deadline {name!r} passed and {type(self).__name__} does not handle it")

    def process_id(self, correlation: str) -> str:
        return f"{self.kind}-{correlation}"


def decide_event(manager: ProcessManager, record: ProcessRecord | None, event: DomainEvent,
                 correlation: str, now: datetime) -> Process | None:
    """Apply ``event`` to the process (starting one if the event may); None when nothing
    is to be stored (no process, or one that has ended or waits for an operator)."""
    if record is None:
        if not isinstance(event, manager.starts):
            return None
        record = ProcessRecord(manager.process_id(correlation), manager.kind, correlation,
                               manager.initial_state(event))
    if record.status in ENDED or record.status == NEEDS_ATTENTION:
        return None
    process = Process(record, now)
    manager.handle(process, event)
    return process


def decide_timeouts(manager: ProcessManager, record: ProcessRecord, now: datetime
                    ) -> Process | None:
    """Fire every deadline of ``record`` that has passed, earliest first, each once."""
    if record.status in ENDED or record.status == NEEDS_ATTENTION:
        return None
    due = sorted((at, name) for name, at in record.deadlines.items() if at <= now)
    if not due:
        return None
    process = Process(record, now)
    for _, name in due:
        if record.deadlines.pop(name, None) is None or record.status in ENDED:
            continue  # an earlier timeout cancelled it or ended the process
        manager.timeout(process, name)
    return process
