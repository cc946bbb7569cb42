"""@applies: one method per event class, called by apply when recording and when rebuilding."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from invariant.domain import AggregateRoot, ConfigurationError, DomainEvent, applies


@dataclass(frozen=True)
class Opened(DomainEvent):
    name: str


@dataclass(frozen=True)
class Credited(DomainEvent):
    amount: int


@dataclass(frozen=True)
class BonusCredited(Credited):
    pass


@dataclass(frozen=True)
class Frozen(DomainEvent):
    pass


@dataclass(frozen=True)
class Thawed(DomainEvent):
    pass


@dataclass(frozen=True)
class Renamed(DomainEvent):
    name: str


class Wallet(AggregateRoot[str]):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.name: str | None = None
        self.total = 0
        self.frozen = False
        self.calls: list[str] = []

    def open(self, name: str) -> None:
        self.record(Opened(name))

    def credit(self, amount: int) -> None:
        self.record(Credited(amount))

    @applies(Opened)
    def _opened(self, event: Opened) -> None:
        self.name = event.name
        self.calls.append("opened")

    @applies(Credited)
    def _credited(self, event: Credited) -> None:
        self.total += event.amount
        self.calls.append(f"credited {event.amount}")

    @applies(Frozen, Thawed)
    def _toggled(self, event: Frozen | Thawed) -> None:
        self.frozen = isinstance(event, Frozen)
        self.calls.append(type(event).__name__)


class VipWallet(Wallet):
    @applies(BonusCredited)
    def _bonus(self, event: BonusCredited) -> None:
        self.total += 2 * event.amount
        self.calls.append(f"bonus {event.amount}")


class LoudWallet(Wallet):
    def _credited(self, event: Credited) -> None:  # overrides the handler by name
        self.total += event.amount
        self.calls.append(f"LOUD {event.amount}")


class Audited(Wallet):
    """Overrides apply itself and hands on to the @applies methods."""

    def apply(self, event: DomainEvent) -> None:
        self.calls.append("audit")
        super().apply(event)


HISTORY: list[DomainEvent] = [
    Opened("w"), Credited(5), Credited(7), Frozen(), Credited(1), Thawed(), BonusCredited(3),
]


def test_recording_calls_the_method_of_the_event_class() -> None:
    wallet = Wallet("w-1")

    wallet.open("main")
    wallet.credit(5)

    assert wallet.name == "main"
    assert wallet.total == 5
    assert wallet.calls == ["opened", "credited 5"]
    assert wallet.version == 2
    assert wallet.pending_events == (Opened("main"), Credited(5))


def test_rebuilding_goes_through_the_same_methods_as_recording() -> None:
    recorded = Wallet("w-1")
    for event in HISTORY:
        recorded.record(event)

    rebuilt = Wallet.rehydrate("w-1", HISTORY)

    assert rebuilt.calls == recorded.calls == [
        "opened", "credited 5", "credited 7", "Frozen", "credited 1", "Thawed", "credited 3",
    ]
    assert (rebuilt.total, rebuilt.frozen, rebuilt.version) == (16, False, 7)
    assert rebuilt.pending_events == ()


def test_an_event_class_without_a_method_of_its_own_takes_its_base_class_method() -> None:
    wallet = Wallet.rehydrate("w-1", [BonusCredited(3)])

    assert wallet.calls == ["credited 3"]


def test_a_subclass_method_for_the_event_subclass_wins() -> None:
    wallet = VipWallet.rehydrate("w-1", HISTORY)

    assert wallet.calls[-1] == "bonus 3"
    assert wallet.total == 19
    assert Wallet.rehydrate("w-1", HISTORY).total == 16  # the base class is unchanged


def test_a_subclass_overriding_a_handler_method_by_name_is_the_one_called() -> None:
    wallet = LoudWallet("w-1")
    wallet.credit(2)

    assert wallet.calls == ["LOUD 2"]
    assert LoudWallet.rehydrate("w-1", [Credited(4)]).calls == ["LOUD 4"]


def test_an_overridden_apply_is_the_path_for_recording_and_rebuilding() -> None:
    wallet = Audited("w-1")
    wallet.credit(2)

    assert wallet.calls == ["audit", "credited 2"]
    assert wallet.applier_for(Credited) == wallet.apply
    assert Audited.rehydrate("w-1", [Opened("a"), Credited(1)]).calls == [
        "audit", "opened", "audit", "credited 1",
    ]


def test_applier_for_is_the_bound_method_of_the_event_class() -> None:
    wallet = Wallet("w-1")

    applier = wallet.applier_for(BonusCredited)
    applier(BonusCredited(4))

    assert applier == wallet._credited
    assert wallet.calls == ["credited 4"]


def test_an_event_without_a_method_is_refused_naming_it_and_nothing_is_recorded() -> None:
    wallet = Wallet("w-1")

    with pytest.raises(NotImplementedError, match=r"Wallet has no @applies method for Renamed"):
        wallet.record(Renamed("x"))
    with pytest.raises(NotImplementedError, match="Renamed"):
        wallet.applier_for(Renamed)(Renamed("x"))
    with pytest.raises(NotImplementedError, match="Renamed"):
        Wallet.rehydrate("w-1", [Opened("a"), Renamed("x")])

    assert wallet.version == 0
    assert wallet.pending_events == ()


def test_two_methods_of_one_class_for_one_event_class_are_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"_a and .*_b both apply Opened"):

        class Twice(AggregateRoot[str]):
            @applies(Opened)
            def _a(self, event: Opened) -> None: ...

            @applies(Opened)
            def _b(self, event: Opened) -> None: ...


@pytest.mark.parametrize("bad", [(), (str,), (Opened("x"),)])
def test_applies_takes_event_classes_only(bad: tuple[object, ...]) -> None:
    with pytest.raises(ConfigurationError, match="@applies takes one or more DomainEvent"):
        applies(*bad)  # type: ignore[arg-type]


def test_applies_marks_plain_methods_only() -> None:
    with pytest.raises(ConfigurationError, match="plain methods"):
        applies(Opened)(staticmethod(lambda event: None))  # type: ignore[type-var]
