"""EventStore.decode_into: the hot path of aggregate loading, run by run of one event type."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from examples.bank.domain import (
    AccountId,
    AccountOpened,
    BankAccount,
    MoneyDeposited,
    MoneyWithdrawn,
)
from examples.bank.wiring import bank_store
from invariant.domain import DomainEvent, Money, SerializationError
from invariant.store import EventStore, MemoryStorage
from tests.money import usd


def store() -> EventStore:
    return bank_store(MemoryStorage())


def row(event: DomainEvent, *, text: bool = True) -> tuple[str, int, Any]:
    data = store().registry.encode(event)
    return (event.event_type, event.schema_version,
            orjson.dumps(data).decode() if text else data)


def v1_deposit(amount: int) -> tuple[str, int, Any]:
    return ("MoneyDeposited", 1, orjson.dumps({"account_id": "a", "amount": amount}).decode())


OPENED = AccountOpened("owner", usd("100"))


class Recorder:
    """A consume and a consumer_for that note which path each event took."""

    def __init__(self) -> None:
        self.events: list[DomainEvent] = []
        self.paths: list[str] = []
        self.asked: list[type[DomainEvent]] = []

    def consume(self, event: DomainEvent) -> None:
        self.events.append(event)
        self.paths.append("consume")

    def consumer_for(self, cls: type[DomainEvent]) -> Callable[[DomainEvent], None]:
        self.asked.append(cls)

        def sink(event: DomainEvent) -> None:
            assert type(event) is cls
            self.events.append(event)
            self.paths.append(cls.__name__)

        return sink


def test_a_run_of_mixed_types_decodes_every_event_in_order() -> None:
    history: list[DomainEvent] = [
        OPENED, MoneyDeposited(usd("1.00")), MoneyDeposited(usd("2.00")),
        MoneyWithdrawn(usd("0.50")), MoneyDeposited(usd("3.00")), MoneyWithdrawn(usd("1.50")),
    ]
    recorder = Recorder()

    count = store().decode_into([row(e) for e in history], recorder.consume,
                                recorder.consumer_for)

    assert count == 6
    assert recorder.events == history
    assert recorder.paths == [type(e).__name__ for e in history]
    # one consumer per event class, however often the runs alternate
    assert recorder.asked == [AccountOpened, MoneyDeposited, MoneyWithdrawn]


def test_without_consumer_for_every_event_goes_to_consume() -> None:
    recorder = Recorder()

    events = store().decode_rows([row(OPENED), row(MoneyDeposited(usd("1.00")))])

    store().decode_into([row(OPENED)], recorder.consume)
    assert events == [OPENED, MoneyDeposited(usd("1.00"))]
    assert recorder.paths == ["consume"]


def test_upcast_runs_between_current_ones_are_upcast_and_go_to_consume() -> None:
    rows = [row(OPENED), v1_deposit(10), v1_deposit(20), row(MoneyDeposited(usd("5.00"))),
            v1_deposit(30), row(MoneyDeposited(Money.of("7", "EUR")))]
    recorder = Recorder()

    store().decode_into(rows, recorder.consume, recorder.consumer_for)

    assert recorder.events == [
        OPENED, MoneyDeposited(usd("10")), MoneyDeposited(usd("20")),
        MoneyDeposited(usd("5.00")), MoneyDeposited(usd("30")),
        MoneyDeposited(Money.of("7", "EUR")),
    ]
    assert recorder.paths == ["AccountOpened", "consume", "consume", "MoneyDeposited",
                              "consume", "MoneyDeposited"]


def test_rows_of_data_and_of_json_text_decode_alike_even_in_one_run() -> None:
    deposit = MoneyDeposited(usd("1.00"))
    rows = [row(OPENED, text=False), row(deposit), row(deposit, text=False), row(deposit),
            v1_deposit(4), ("MoneyDeposited", 1, {"amount": 5})]

    events = store().decode_rows(rows)

    assert events == [OPENED, deposit, deposit, deposit, MoneyDeposited(usd("4")),
                      MoneyDeposited(usd("5"))]


def test_an_amount_seen_for_the_first_time_is_decoded_and_validated() -> None:
    rare = MoneyDeposited(Money.of("123456.78", "KWD"))

    assert store().decode_rows([row(rare), row(rare)]) == [rare, rare]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "MoneyDeposited data lacks field"),
        ({"amount": "10.00"}, "stored Money must be an object"),
        ({"amount": {"currency": "USD"}}, "lacks 'amount'"),
        ({"amount": {"amount": "1.001", "currency": "USD"}}, "more decimal places"),
        ({"amount": {"amount": "-1.00", "currency": "USD"}}, "negative"),
        ({"amount": {"amount": "1.00", "currency": "XYZ"}}, "unknown ISO 4217"),
        ({"amount": {"amount": ["1"], "currency": "USD"}}, "stored Money"),
        ({"amount": {"amount": "1.00", "currency": ["USD"]}}, "stored Money"),
        ({"amount": {"amount": 1, "currency": "USD"}}, "MoneyDeposited"),
    ],
)
def test_malformed_data_in_a_run_fails_as_the_careful_decoder_fails(
    data: dict[str, Any], message: str
) -> None:
    the_store = store()
    good = row(MoneyDeposited(usd("1.00")))
    bad = ("MoneyDeposited", 2, orjson.dumps(data).decode())

    with pytest.raises(SerializationError, match=message) as careful:
        the_store.registry.decode("MoneyDeposited", 2, data)
    with pytest.raises(SerializationError) as hot:
        the_store.decode_rows([row(OPENED), good, good, bad, good])

    assert str(hot.value) == str(careful.value)


def test_text_that_is_not_json_raises_the_json_error() -> None:
    with pytest.raises(orjson.JSONDecodeError):
        store().decode_rows([row(OPENED), ("MoneyDeposited", 2, "{not json")])


def test_unknown_types_and_schema_versions_are_refused() -> None:
    with pytest.raises(SerializationError, match="unknown event type 'Gone'"):
        store().decode_rows([row(OPENED), ("Gone", 1, "{}")])
    with pytest.raises(SerializationError, match="written by newer code"):
        store().decode_rows([("MoneyDeposited", 3, '{"amount": 1}')])


def test_a_failing_upcaster_fails_the_load() -> None:
    with pytest.raises(SerializationError, match="MoneyDeposited"):
        store().decode_rows([("MoneyDeposited", 1, '{"not_amount": 1}')])


def test_loading_an_aggregate_applies_through_its_methods_per_run() -> None:
    rows = [row(OPENED), row(MoneyDeposited(usd("1.00"))), v1_deposit(2),
            row(MoneyWithdrawn(usd("0.50"))), row(MoneyDeposited(usd("3.00")))]
    account = BankAccount(AccountId("a"))

    applied = store().decode_into(rows, account.apply, account.applier_for)

    assert applied == 5
    assert account.balance("USD") == usd("105.50")
    assert account.transactions == 5
    assert account.owner_id == "owner"
