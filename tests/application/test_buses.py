"""Command and query buses: start-up checks, middleware, idempotency, read-your-writes."""

from __future__ import annotations

import asyncio
import logging
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from examples.bank.application import (
    COMMAND_HANDLERS,
    COMMANDS,
    AccountSummary,
    DepositMoney,
    GetAccountSummary,
    OpenAccount,
    WithdrawMoney,
    query_handlers,
)
from examples.bank.domain import BankAccount, InsufficientFunds
from examples.bank.wiring import bank_store
from invariant.application import (
    Aggregates,
    Command,
    CommandBus,
    IdempotencyMiddleware,
    LoggingMiddleware,
    Query,
    QueryBus,
    RetryMiddleware,
    TracingMiddleware,
    UnitOfWork,
    ValidationMiddleware,
    default_middleware,
)
from invariant.domain import ConcurrencyError, ConfigurationError, ValidationError
from invariant.telemetry.correlation import correlated
from tests.garbage import cyclic_garbage
from tests.money import usd


def make_bus(storage: Any, **kwargs: Any) -> CommandBus:
    aggregates = Aggregates(bank_store(storage))
    middleware = kwargs.pop("middleware", default_middleware(storage))
    return CommandBus(aggregates, COMMAND_HANDLERS, middleware=middleware, commands=COMMANDS,
                      **kwargs)


async def test_a_command_returns_its_value_versions_and_position(any_storage: Any) -> None:
    bus = make_bus(any_storage)
    opened = await bus.dispatch(OpenAccount(account_id="A1", owner_id="U1",
                                            initial_deposit=usd(100)))
    result = await bus.dispatch(DepositMoney(account_id="A1", amount=usd(50)))
    assert opened.value == "A1"
    assert result.value == "150.00"
    assert result.versions == {"account-A1": 2}
    assert result.position == opened.position + 1
    assert not result.duplicate


async def test_events_carry_the_command_as_correlation_and_causation(any_storage: Any) -> None:
    bus = make_bus(any_storage)
    command = OpenAccount(account_id="A1", owner_id="U1", initial_deposit=usd(1))
    await bus.dispatch(command, metadata={"actor": "ann"})
    [envelope] = await bus.aggregates.store.read_stream("account-A1")
    assert envelope.correlation_id == str(command.command_id)
    assert envelope.causation_id == str(command.command_id)
    assert envelope.metadata["actor"] == "ann"


async def test_a_command_sent_while_a_flow_is_handled_belongs_to_that_flow(
        any_storage: Any) -> None:
    bus = make_bus(any_storage)
    command = OpenAccount(account_id="A2", owner_id="U1", initial_deposit=usd(1))
    with correlated({"correlation_id": "request-7"}):  # e.g. an HTTP request's id
        await bus.dispatch(command)
    [envelope] = await bus.aggregates.store.read_stream("account-A2")
    assert envelope.correlation_id == "request-7"
    assert envelope.causation_id == str(command.command_id)


async def test_resending_a_command_returns_the_first_outcome_and_changes_nothing(
    any_storage: Any,
) -> None:
    bus = make_bus(any_storage)
    await bus.dispatch(OpenAccount(account_id="A1", owner_id="U1", initial_deposit=usd(100)))
    deposit = DepositMoney(account_id="A1", amount=usd(50))
    first = await bus.dispatch(deposit)
    again = await bus.dispatch(deposit)
    assert again.duplicate
    assert (again.value, again.position, again.versions) == (
        first.value, first.position, first.versions,
    )
    assert await any_storage.stream_version("account-A1") == 2


async def test_concurrent_resends_apply_the_command_once(any_storage: Any) -> None:
    bus = make_bus(any_storage)
    await bus.dispatch(OpenAccount(account_id="A1", owner_id="U1", initial_deposit=usd(0)))
    deposit = DepositMoney(account_id="A1", amount=usd(10))
    results = await asyncio.gather(*[bus.dispatch(deposit) for _ in range(6)])
    assert sum(not r.duplicate for r in results) == 1
    assert {r.position for r in results} == {results[0].position}
    account = await Aggregates(bank_store(any_storage), cache_size=0).repository(
        BankAccount).load("A1")
    assert account.balance() == usd(10)


async def test_a_failed_command_is_not_recorded_and_can_be_resent(any_storage: Any) -> None:
    bus = make_bus(any_storage)
    await bus.dispatch(OpenAccount(account_id="A1", owner_id="U1", initial_deposit=usd(10)))
    withdraw = WithdrawMoney(account_id="A1", amount=usd(20))
    with pytest.raises(InsufficientFunds):
        await bus.dispatch(withdraw)
    assert await any_storage.read_command(withdraw.command_id) is None
    await bus.dispatch(DepositMoney(account_id="A1", amount=usd(10)))
    assert (await bus.dispatch(withdraw)).value == "0.00"


async def test_a_reused_command_id_for_another_command_type_is_refused(any_storage: Any) -> None:
    bus = make_bus(any_storage)
    opened = OpenAccount(account_id="A1", owner_id="U1", initial_deposit=usd(10))
    await bus.dispatch(opened)
    with pytest.raises(ConfigurationError, match="every command needs its own id"):
        await bus.dispatch(DepositMoney(account_id="A1", amount=usd(1),
                                        command_id=opened.command_id))


async def test_validation_refuses_malformed_commands_before_loading(any_storage: Any) -> None:
    bus = make_bus(any_storage)
    with pytest.raises(ValidationError) as caught:
        await bus.dispatch(OpenAccount(account_id=" ", owner_id="", initial_deposit=usd(1)))
    assert [e.field for e in caught.value.errors] == ["account_id", "owner_id"]
    assert await any_storage.head_position() == 0


async def test_retries_resolve_concurrency_conflicts(any_storage: Any) -> None:
    async def slow_deposit(command: DepositMoney, uow: UnitOfWork) -> str:
        account = await uow.get(BankAccount, command.account_id)
        await asyncio.sleep(0)  # interleave with the other senders
        account.deposit(command.amount)
        return "ok"

    handlers = {**COMMAND_HANDLERS, DepositMoney: slow_deposit}

    def process(attempts: int) -> CommandBus:  # commands of one process take turns
        return CommandBus(Aggregates(bank_store(any_storage)), handlers,
                          middleware=[RetryMiddleware(attempts=attempts)])

    await process(0).dispatch(OpenAccount(account_id="A1", owner_id="U1",
                                          initial_deposit=usd(0)))
    results = await asyncio.gather(
        *[process(30).dispatch(DepositMoney(account_id="A1", amount=usd(1)))
          for _ in range(10)]
    )
    assert sum(r.retries for r in results) > 0
    outcomes = await asyncio.gather(
        *[process(0).dispatch(DepositMoney(account_id="A1", amount=usd(1))) for _ in range(5)],
        return_exceptions=True,
    )
    assert any(isinstance(o, ConcurrencyError) for o in outcomes)


async def test_logging_and_tracing_middleware_see_every_command(
    any_storage: Any, caplog: pytest.LogCaptureFixture
) -> None:
    spans: list[tuple[str, dict[str, Any]]] = []

    @contextmanager
    def start_span(name: str, attributes: dict[str, Any]) -> Any:
        spans.append((name, attributes))
        yield

    bus = make_bus(any_storage, middleware=[LoggingMiddleware(), TracingMiddleware(start_span),
                                            ValidationMiddleware()])
    command = OpenAccount(account_id="A1", owner_id="U1", initial_deposit=usd(1))
    with caplog.at_level(logging.INFO, logger="invariant.commands"):
        await bus.dispatch(command)
    assert spans == [("command OpenAccount", {"invariant.command": "OpenAccount",
                                              "invariant.command_id": str(command.command_id)})]
    assert any("OpenAccount" in r.message and "handled" in r.message for r in caplog.records)
    assert all("USER" not in r.message for r in caplog.records)


async def test_read_your_writes_through_the_query_bus(any_storage: Any) -> None:
    bus = make_bus(any_storage)
    queries = QueryBus(query_handlers(bus.aggregates), queries=[GetAccountSummary])
    await bus.dispatch(OpenAccount(account_id="A1", owner_id="U1", initial_deposit=usd(5)))
    await bus.dispatch(DepositMoney(account_id="A1", amount=usd(7)))
    summary = await queries.ask(GetAccountSummary("A1"))
    assert isinstance(summary, AccountSummary)
    assert (summary.balances["USD"], summary.version, summary.transactions) == (
        usd(12).amount, 2, 2,
    )


# -- start-up checks ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CloseAccount(Command):
    account_id: str


def test_a_command_without_a_handler_fails_at_start_up() -> None:
    from invariant.store import MemoryStorage

    aggregates = Aggregates(bank_store(MemoryStorage()))
    with pytest.raises(ConfigurationError, match=r"no handler registered for command.*Close"):
        CommandBus(aggregates, COMMAND_HANDLERS, commands=[*COMMANDS, CloseAccount])


def test_a_synchronous_handler_is_refused_at_start_up() -> None:
    from invariant.store import MemoryStorage

    def sync_handler(command: CloseAccount, uow: UnitOfWork) -> None:
        return None

    with pytest.raises(ConfigurationError, match="must be an async function"):
        CommandBus(Aggregates(bank_store(MemoryStorage())), {CloseAccount: sync_handler})


def test_a_handler_registered_for_the_wrong_command_is_refused() -> None:
    from invariant.store import MemoryStorage

    with pytest.raises(ConfigurationError, match="registered for CloseAccount but takes"):
        CommandBus(Aggregates(bank_store(MemoryStorage())),
                   {CloseAccount: COMMAND_HANDLERS[DepositMoney]})


async def test_dispatching_an_unregistered_command_says_what_to_do() -> None:
    from invariant.store import MemoryStorage

    bus = CommandBus(Aggregates(bank_store(MemoryStorage())), COMMAND_HANDLERS)
    with pytest.raises(ConfigurationError, match="no handler registered for CloseAccount"):
        await bus.dispatch(CloseAccount(account_id="A1"))


@dataclass(frozen=True)
class LeakAggregate(Query):
    account_id: str


async def test_query_handlers_may_not_return_aggregates(any_storage: Any) -> None:
    bus = make_bus(any_storage)
    await bus.dispatch(OpenAccount(account_id="A1", owner_id="U1", initial_deposit=usd(5)))

    async def leak(query: LeakAggregate) -> BankAccount:
        return await bus.aggregates.repository(BankAccount).load(query.account_id)

    queries = QueryBus({LeakAggregate: leak})
    with pytest.raises(ConfigurationError, match="returned an aggregate"):
        await queries.ask(LeakAggregate("A1"))
    with pytest.raises(ConfigurationError, match="no handler registered for query"):
        QueryBus({}, queries=[LeakAggregate])


def test_idempotency_middleware_is_part_of_the_defaults() -> None:
    from invariant.store import MemoryStorage

    kinds = [type(m) for m in default_middleware(MemoryStorage())]
    assert IdempotencyMiddleware in kinds and RetryMiddleware in kinds
    assert uuid.UUID(int=0) != Command().command_id


async def test_dispatching_a_command_leaves_no_reference_cycles(any_storage: Any) -> None:
    # Through every default middleware: nothing a command makes may need the cyclic
    # collector to be freed (see test_a_command_leaves_no_reference_cycles).
    bus = make_bus(any_storage)
    await bus.dispatch(OpenAccount(account_id="A1", owner_id="U1", initial_deposit=usd(100)))
    await bus.dispatch(DepositMoney(account_id="A1", amount=usd(1)))
    with cyclic_garbage() as garbage:
        for _ in range(10):
            await bus.dispatch(DepositMoney(account_id="A1", amount=usd(1)))
        repeated = DepositMoney(account_id="A1", amount=usd(1))
        await bus.dispatch(repeated)
        await bus.dispatch(repeated)  # the idempotent repeat, too
    assert garbage == []
