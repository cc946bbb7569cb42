"""A process manager whose events and commands belong to modules of other hosts: its host
hears those events from the broker and sends its commands there as messages; the host of
the module that accepts them dispatches them on its bus. Three hosts, three SQLite files,
one broker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from invariant import Settings
from invariant.application import Command, UnitOfWork
from invariant.domain import AggregateRoot, ConfigurationError, DomainEvent, Identity, applies
from invariant.hosting import SERVICE_ROLES, Host, Module, bootstrap
from invariant.hosting.remote import COMMAND_PREFIX, CommandReceiver, ProcessFeed
from invariant.messaging import deadletters
from invariant.messaging.brokers.inprocess import InProcessBroker
from invariant.messaging.port import Message
from invariant.processes import Process, ProcessManager
from invariant.processes import persistence as processes
from invariant.processes.dispatch import NoHandlerHere
from invariant.retry import RetryPolicy
from tests.messaging.helpers import wait_until

# -- two small contexts -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SaleId(Identity):
    pass


@dataclass(frozen=True)
class Sold(DomainEvent):
    sale_id: str


@dataclass(frozen=True)
class TicketIssued(DomainEvent):
    sale_id: str


class Sale(AggregateRoot[SaleId]):
    category = "sale"

    @applies(Sold)
    def _sold(self, event: Sold) -> None:
        pass


class Ticket(AggregateRoot[SaleId]):
    category = "ticket"

    @applies(TicketIssued)
    def _issued(self, event: TicketIssued) -> None:
        pass


@dataclass(frozen=True, kw_only=True)
class Sell(Command[str]):
    sale_id: str


@dataclass(frozen=True, kw_only=True)
class IssueTicket(Command[str]):
    sale_id: str


async def sell(command: Sell, uow: UnitOfWork) -> str:
    sale = Sale(SaleId(command.sale_id))
    sale.record(Sold(command.sale_id))
    uow.add(sale)
    return command.sale_id


async def issue(command: IssueTicket, uow: UnitOfWork) -> str:
    ticket = await uow.find(Ticket, SaleId(command.sale_id))
    if ticket is None:  # issued once, however often asked
        ticket = Ticket(SaleId(command.sale_id))
        ticket.record(TicketIssued(command.sale_id))
        uow.add(ticket)
    return command.sale_id


class Delivery(ProcessManager):
    kind = "delivery"
    handles = (Sold, TicketIssued)
    starts = (Sold,)
    sends = (IssueTicket,)

    def correlate(self, event: DomainEvent) -> str | None:
        return str(getattr(event, "sale_id", None))

    def handle(self, process: Process, event: DomainEvent) -> None:
        match event:
            case Sold():
                process.send(IssueTicket(sale_id=process.correlation), "issue")
            case TicketIssued():
                process.complete()


def sales() -> Module:
    return Module(name="sales", events=(Sold,), commands={Sell: sell})


def tickets() -> Module:
    return Module(name="tickets", events=(TicketIssued,), commands={IssueTicket: issue},
                  accepts=(IssueTicket,))


def delivery() -> Module:
    return Module(name="delivery", processes=[Delivery()])


# -- the hosts ----------------------------------------------------------------------------


@dataclass
class Hosts:
    sales: Host
    tickets: Host
    delivery: Host
    broker: InProcessBroker


@pytest.fixture
async def hosts(tmp_path: Path) -> AsyncIterator[Hosts]:
    broker = InProcessBroker()
    async with AsyncExitStack() as stack:
        built = [bootstrap(Settings(store="sqlite", sqlite_path=tmp_path / f"{m.name}.db"),
                           [m], SERVICE_ROLES, broker=broker)
                 for m in (sales(), tickets(), delivery())]
        for host in built:
            await stack.enter_async_context(host)
        yield Hosts(built[0], built[1], built[2], broker)


async def status(host: Host, sale_id: str) -> str | None:
    assert host.read_models is not None
    record = await host.read_models.run(
        lambda conn: processes.find(conn, Delivery.kind, sale_id), write=False)
    return None if record is None else record.status


async def issued(host: Host, sale_id: str) -> int:
    events = await host.app.store.read_stream(f"ticket-{sale_id}")
    return len(events)


async def test_a_process_in_one_host_drives_modules_of_two_others(hosts: Hosts) -> None:
    sale_id = uuid.uuid4().hex
    await hosts.sales.commands.dispatch(Sell(sale_id=sale_id))

    async def completed() -> bool:
        return await status(hosts.delivery, sale_id) == processes.COMPLETED

    await wait_until(completed, 10)
    assert await issued(hosts.tickets, sale_id) == 1
    assert hosts.delivery.processes is not None
    assert [c.name for c in hosts.delivery.consumers] == ["process-delivery"]
    assert [c.name for c in hosts.tickets.consumers] == ["commands-tickets"]


async def test_a_command_message_delivered_twice_is_handled_once(hosts: Hosts) -> None:
    sale_id = uuid.uuid4().hex
    command = IssueTicket(sale_id=sale_id)
    message = Message(str(command.command_id), f"{COMMAND_PREFIX}IssueTicket", "p-1", 1,
                      {"sale_id": sale_id, "command_id": str(command.command_id)})
    receiver = hosts.tickets.consumers[0]
    assert isinstance(receiver, CommandReceiver)
    assert await receiver.handle(message) == "handled"
    assert await receiver.handle(message) == "handled"  # the bus: the first outcome
    assert await issued(hosts.tickets, sale_id) == 1


async def test_an_unreadable_command_is_parked_not_retried_forever(hosts: Hosts) -> None:
    receiver = hosts.tickets.consumers[0]
    message = Message(uuid.uuid4().hex, f"{COMMAND_PREFIX}IssueTicket", "p-2", 1,
                      {"sale_id": 42, "unknown": True})
    assert await receiver.handle(message) == "parked"
    assert hosts.tickets.read_models is not None
    [letter] = await hosts.tickets.read_models.run(deadletters.list_parked, write=False)
    assert "cannot be read as a command this service takes" in letter.error


async def test_an_event_the_manager_cannot_read_is_parked(hosts: Hosts) -> None:
    feed = hosts.delivery.consumers[0]
    assert isinstance(feed, ProcessFeed)
    message = Message(uuid.uuid4().hex, "Sold", "sale-x", 1, {"no_sale_id": "x"})
    assert await feed.handle(message) == "parked"
    assert hosts.delivery.read_models is not None
    [letter] = await hosts.delivery.read_models.run(deadletters.list_parked, write=False)
    assert "cannot be read as an event delivery handles" in letter.error


async def test_an_event_delivered_twice_is_decided_once(hosts: Hosts) -> None:
    feed = hosts.delivery.consumers[0]
    sale_id = uuid.uuid4().hex
    message = Message(uuid.uuid4().hex, "Sold", f"sale-{sale_id}", 1, {"sale_id": sale_id})
    assert await feed.handle(message) == "handled"
    assert await feed.handle(message) == "duplicate"
    assert hosts.delivery.read_models is not None
    sent = await hosts.delivery.read_models.run(
        lambda conn: conn.execute(select(processes.process_commands)).all(), write=False)
    assert len([row for row in sent if sale_id in str(row)]) <= 1


async def test_a_page_of_events_from_the_broker_nudges_the_runner_once_committed(
        hosts: Hosts) -> None:
    feed = hosts.delivery.consumers[0]
    assert isinstance(feed, ProcessFeed)
    sales = [uuid.uuid4().hex for _ in range(3)]
    page = [_Held(Message(uuid.uuid4().hex, "Sold", f"sale-{s}", 1, {"sale_id": s}))
            for s in sales]
    feed.runner._nudged.clear()
    assert await feed.consume_batch(page) == 3  # one transaction, then the nudge
    assert feed.runner._nudged.is_set()
    assert all(d.acked for d in page)


class _Held:
    def __init__(self, message: Message) -> None:
        self.message, self.redelivered, self.acked = message, False, False

    async def ack(self) -> None:
        self.acked = True

    async def nack(self) -> None:
        raise AssertionError("not nacked here")


async def test_a_command_no_module_handles_and_no_broker_can_take_parks_the_process(
        tmp_path: Path) -> None:
    settings = Settings(store="sqlite", sqlite_path=tmp_path / "alone.db")
    # Every event the manager hears is stored here, so the host has no broker at all.
    host = bootstrap(settings, [sales(), Module(name="ticket-events", events=(TicketIssued,)),
                                delivery()], ["processes"])
    assert host.processes is not None
    assert host.processes.dispatcher.forward is None
    async with host:
        sale_id = uuid.uuid4().hex
        await host.commands.dispatch(Sell(sale_id=sale_id))
        host.processes.dispatcher.retry = RetryPolicy(attempts=1)
        await host.processes.run_once()
        assert await status(host, sale_id) == processes.NEEDS_ATTENTION
        assert host.read_models is not None
        record = await host.read_models.run(
            lambda conn: processes.find(conn, Delivery.kind, sale_id), write=False)
        assert record is not None and "no module of this host handles IssueTicket" in str(
            record.error)
    assert issubclass(NoHandlerHere, ConfigurationError)


def test_a_module_cannot_accept_a_command_it_does_not_handle() -> None:
    stray = Module(name="stray", accepts=(IssueTicket,))
    with pytest.raises(ConfigurationError, match="stray accepts IssueTicket"):
        bootstrap(Settings(store="memory"), [stray], ["http"])

