"""How a host that runs only some of an application's modules (a service) works with the
others: through the broker, with the same guarantees as in one process.

* :class:`CommandSender`: a command a process manager sends that no module of this host
  handles leaves as the message ``command.<Type>``, whose id is the command's own
  (deterministic, see :func:`~invariant.processes.command_id_for`): a repeat after a crash
  is dropped by the broker's de-duplication or handled once by the receiving bus.
* :class:`CommandReceiver`: the consumer group ``commands-<module>`` of the service that
  handles them: each is dispatched on its bus (idempotent by command id); a failure is
  retried with backoff, then parked as a dead letter an operator can replay.
* :class:`ProcessFeed`: the consumer group ``process-<kind>`` of a process manager whose
  events another service stores: each is decided in the transaction of its inbox row, so
  it is decided once however often it is delivered.

Nothing here is needed when one host runs every module: the process runner then reads its
events from the log and dispatches its commands on the bus, as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection

from invariant.application.bus import CommandBus
from invariant.application.messages import Command
from invariant.clock import utc_now
from invariant.domain.errors import InvariantError, ValidationError
from invariant.messaging.consumer import HANDLED, Consumer, external
from invariant.messaging.errors import MessagingError, PermanentMessageError
from invariant.messaging.port import Broker, Delivery, Message
from invariant.processes import ProcessManager, ProcessRunner
from invariant.processes.dispatch import CommandCodec
from invariant.processes.persistence import PendingCommand
from invariant.retry import RetryPolicy
from invariant.sql.database import ReadModelDatabase
from invariant.store.registry import EventRegistry

COMMAND_PREFIX = "command."
"""The message type of a command sent to another service: ``command.ReserveStock``."""


def command_type(command: type[Command[Any]]) -> str:
    """The message type that carries ``command`` between services."""
    return COMMAND_PREFIX + command.__qualname__


class CommandSender:
    """Publishes a process's command to the service that handles it (the dispatcher's
    ``forward``)."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    async def __call__(self, row: PendingCommand) -> None:
        await self.broker.publish([Message(
            row.command_id, COMMAND_PREFIX + row.command_type, row.process_id, 1, row.payload,
            {"process_id": row.process_id}, created_at=utc_now())])


class CommandReceiver(Consumer):
    """Dispatches the commands other services send this one on its bus. The bus handles a
    command id once, so this is an :func:`~invariant.messaging.consumer.external` handler:
    retried, parked and replayed as any other."""

    def __init__(self, name: str, database: ReadModelDatabase, bus: CommandBus,
                 commands: Iterable[type[Command[Any]]], *,
                 backoff: RetryPolicy | None = None) -> None:
        accepted = list(commands)
        self.codec = CommandCodec(accepted)
        self.bus = bus
        super().__init__(name, database,
                         external(self._dispatch, {command_type(c) for c in accepted}),
                         backoff=backoff)

    async def _dispatch(self, message: Message) -> bool:
        try:
            command = self.codec.decode(message.message_type.removeprefix(COMMAND_PREFIX),
                                        message.data)
        except (InvariantError, KeyError, TypeError, ValueError) as exc:
            raise PermanentMessageError(
                f"{message.message_type} {message.message_id} cannot be read as a command "
                f"this service takes: {exc}") from exc
        try:
            await self.bus.dispatch(command, metadata=_metadata(message.metadata))
        except ValidationError as exc:  # a malformed command is refused, never retried
            raise PermanentMessageError(str(exc)) from exc
        return True  # a repeat is handled by the bus too: it gets the first outcome


class ProcessFeed(Consumer):
    """The events of ``manager`` that other services store, from the broker."""

    def __init__(self, runner: ProcessRunner, manager: ProcessManager,
                 database: ReadModelDatabase, *, backoff: RetryPolicy | None = None) -> None:
        remote = runner.remote(manager)
        if not remote:
            raise MessagingError(f"{manager.kind} hears every event from this host's log; it "
                                 "needs no feed from the broker")
        self.runner = runner
        self.kind = manager.kind
        self.registry = EventRegistry(remote)
        super().__init__(f"process-{manager.kind}", database, self._decide, backoff=backoff,
                         types={t.event_type for t in remote})

    def _decide(self, conn: Connection, message: Message) -> None:
        try:
            event = self.registry.decode(message.message_type, message.schema_version,
                                         message.data)
        except (InvariantError, KeyError, TypeError, ValueError) as exc:
            raise PermanentMessageError(
                f"{message.message_type} {message.message_id} cannot be read as an event "
                f"{self.kind} handles: {exc}") from exc
        self.runner.decide(conn, self.kind, event)

    async def handle(self, message: Message) -> str:
        outcome = await super().handle(message)
        if outcome == HANDLED:
            self.runner.nudge()  # its commands wait to be dispatched
        return outcome

    async def consume_batch(self, deliveries: Sequence[Delivery]) -> int:
        handled = await super().consume_batch(deliveries)  # a page: one transaction
        if handled:
            self.runner.nudge()
        return handled


def _metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    process = metadata.get("process_id")
    return {"process_id": process} if isinstance(process, str) else {}

