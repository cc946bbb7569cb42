"""The codec: explicit, type-directed conversion of events to JSON data and back."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from invariant.domain import (
    ConfigurationError,
    Currency,
    DomainEvent,
    Identity,
    Money,
    SerializationError,
    ValidationError,
    ValueObject,
)
from invariant.store import Codec, EventRegistry


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass(frozen=True, slots=True)
class OrderId(Identity):
    """Identifies an order."""


@dataclass(frozen=True)
class Address(ValueObject):
    street: str
    city: str

    def validate(self) -> None:
        if not self.street.strip():
            raise ValidationError.single("street", "is required", "required", subject="Address")


@dataclass(frozen=True)
class EverythingHappened(DomainEvent):
    text: str
    count: int
    ratio: float
    flag: bool
    price: Decimal
    at: datetime
    day: date
    ref: UUID
    colour: Colour
    order_id: OrderId
    total: Money
    currency: Currency
    address: Address
    tags: list[str]
    lines: list[Money]
    history: tuple[date, ...]
    by_name: dict[str, Address]
    note: str | None
    maybe_total: Money | None
    retries: int = 3
    labels: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Paid(DomainEvent):
    order_id: OrderId
    amount: Money


@dataclass(frozen=True)
class Stamped(DomainEvent):
    at: datetime


@dataclass(frozen=True)
class Moved(DomainEvent):
    to: Address


class Blob:
    """A plain class the codec cannot know how to store."""


@dataclass(frozen=True)
class WithSet(DomainEvent):
    ids: set[int]


@dataclass(frozen=True)
class WithBlob(DomainEvent):
    blob: Blob


@dataclass(frozen=True)
class WithPair(DomainEvent):
    pair: tuple[int, str]


@dataclass(frozen=True)
class WithIntKeys(DomainEvent):
    by_id: dict[int, str]


@dataclass(frozen=True)
class WithUnion(DomainEvent):
    either: int | str


@dataclass(frozen=True)
class WithNestedSet(DomainEvent):
    groups: list[set[int]]


@dataclass(frozen=True)
class Checked(DomainEvent):
    amount: int

    def __post_init__(self) -> None:
        if self.amount < 0:
            raise ValueError("negative")


@dataclass(frozen=True)
class CheckedChild(Checked):
    note: str = ""


@dataclass(frozen=True)
class Renamed(DomainEvent):
    event_type = "OrderPaid"

    order_id: OrderId


@dataclass(frozen=True)
class AlsoOrderPaid(DomainEvent):
    event_type = "OrderPaid"

    order_id: OrderId


@dataclass(frozen=True)
class ShapeV3(DomainEvent):
    schema_version = 3

    name: str


def everything() -> EverythingHappened:
    return EverythingHappened(
        text="héllo",
        count=7,
        ratio=0.25,
        flag=True,
        price=Decimal("12.345"),
        at=datetime(2024, 3, 1, 12, 30, tzinfo=timezone(timedelta(hours=2))),
        day=date(2024, 3, 1),
        ref=UUID("12345678-1234-5678-1234-567812345678"),
        colour=Colour.BLUE,
        order_id=OrderId("o-1"),
        total=Money.of("12.50", "USD"),
        currency=Currency.of("EUR"),
        address=Address("1 Main St", "Paris"),
        tags=["a", "b"],
        lines=[Money.of(1, "USD"), Money.of(100, "JPY")],
        history=(date(2024, 1, 1), date(2024, 2, 1)),
        by_name={"home": Address("1 Main St", "Paris"), "work": Address("2 Side St", "Lyon")},
        note=None,
        maybe_total=Money.of("0.99", "EUR"),
        retries=5,
        labels=["x"],
    )


# -- round trips ----------------------------------------------------------------------------


def test_an_event_with_every_supported_field_type_round_trips() -> None:
    codec = Codec()
    event = everything()

    decoded = codec.decode(EverythingHappened, codec.encode(event))

    assert decoded == event
    assert type(decoded) is EverythingHappened


def test_the_encoded_form_is_plain_json_data() -> None:
    data = Codec().encode(everything())

    assert json.loads(json.dumps(data)) == data
    assert data == {
        "text": "héllo",
        "count": 7,
        "ratio": 0.25,
        "flag": True,
        "price": "12.345",
        "at": "2024-03-01T10:30:00+00:00",
        "day": "2024-03-01",
        "ref": "12345678-1234-5678-1234-567812345678",
        "colour": "blue",
        "order_id": "o-1",
        "total": {"amount": "12.50", "currency": "USD"},
        "currency": "EUR",
        "address": {"street": "1 Main St", "city": "Paris"},
        "tags": ["a", "b"],
        "lines": [{"amount": "1.00", "currency": "USD"}, {"amount": "100", "currency": "JPY"}],
        "history": ["2024-01-01", "2024-02-01"],
        "by_name": {
            "home": {"street": "1 Main St", "city": "Paris"},
            "work": {"street": "2 Side St", "city": "Lyon"},
        },
        "note": None,
        "maybe_total": {"amount": "0.99", "currency": "EUR"},
        "retries": 5,
        "labels": ["x"],
    }


def test_decoded_fields_have_their_declared_types() -> None:
    codec = Codec()
    decoded = codec.decode(EverythingHappened, json.loads(json.dumps(codec.encode(everything()))))

    assert type(decoded.price) is Decimal
    assert decoded.at.utcoffset() == timedelta(0)
    assert decoded.at == datetime(2024, 3, 1, 10, 30, tzinfo=UTC)
    assert type(decoded.day) is date
    assert type(decoded.ref) is UUID
    assert decoded.colour is Colour.BLUE
    assert type(decoded.order_id) is OrderId
    assert type(decoded.address) is Address
    assert type(decoded.history) is tuple
    assert type(decoded.tags) is list
    assert decoded.currency is Currency.of("EUR")
    assert decoded.maybe_total == Money.of("0.99", "EUR")


def test_an_optional_field_round_trips_a_value_and_none() -> None:
    codec = Codec()
    with_note = codec.decode(EverythingHappened, {**codec.encode(everything()), "note": "hi"})
    without_total = codec.decode(
        EverythingHappened, {**codec.encode(everything()), "maybe_total": None}
    )

    assert with_note.note == "hi"
    assert without_total.maybe_total is None


def test_missing_fields_with_defaults_take_their_defaults() -> None:
    codec = Codec()
    data = codec.encode(everything())
    del data["retries"], data["labels"]

    first = codec.decode(EverythingHappened, data)
    second = codec.decode(EverythingHappened, data)

    assert first.retries == 3
    assert first.labels == []
    assert first.labels is not second.labels  # default_factory runs once per decode


def test_a_stored_naive_datetime_is_read_as_utc() -> None:
    decoded = Codec().decode(Stamped, {"at": "2024-03-01T10:30:00"})

    assert decoded.at == datetime(2024, 3, 1, 10, 30, tzinfo=UTC)


def test_the_codec_for_a_class_is_built_once() -> None:
    codec = Codec()

    assert codec.for_class(Paid) is codec.for_class(Paid)


# -- refused on encode ----------------------------------------------------------------------


def test_a_naive_datetime_is_refused_on_encode() -> None:
    with pytest.raises(SerializationError, match=r"naive datetime .* use an aware datetime"):
        Codec().encode(Stamped(datetime(2024, 3, 1, 10, 30)))


# -- refused when the class codec is built --------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (WithSet, "WithSet.ids: cannot serialize"),
        (WithBlob, "WithBlob.blob: cannot serialize Blob"),
        (WithPair, r"WithPair.pair: use tuple\[X, ...\]"),
        (WithIntKeys, "WithIntKeys.by_id: mapping keys must be str"),
        (WithUnion, r"WithUnion.either: only 'X \| None' unions"),
        (WithNestedSet, "WithNestedSet.groups: cannot serialize"),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else "",
)
def test_an_unsupported_field_type_is_refused_when_the_codec_is_built(
    cls: type[Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Codec().for_class(cls)


def test_a_class_that_is_not_a_dataclass_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="Blob is not a dataclass"):
        Codec().for_class(Blob)


def test_registering_an_event_with_an_unsupported_field_is_refused_before_any_write() -> None:
    with pytest.raises(ConfigurationError, match=r"WithSet\.ids"):
        EventRegistry([WithSet])


def test_an_event_with_post_init_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="Checked has __post_init__"):
        Codec().for_class(Checked)


def test_an_event_inheriting_post_init_is_refused_too() -> None:
    # Decoding skips __init__, so an inherited __post_init__ would be skipped just the same.
    with pytest.raises(ConfigurationError, match="__post_init__"):
        Codec().for_class(CheckedChild)


def test_a_value_object_with_validate_is_accepted_and_validated_on_decode() -> None:
    codec = Codec()

    assert codec.decode(Moved, {"to": {"street": "1 Main St", "city": "Paris"}}) == Moved(
        Address("1 Main St", "Paris")
    )


# -- refused on decode ----------------------------------------------------------------------


def test_a_missing_required_field_names_the_field_and_suggests_an_upcaster() -> None:
    with pytest.raises(SerializationError, match=r"Paid data lacks field.*amount") as caught:
        Codec().decode(Paid, {"order_id": "o-1"})

    assert "register an upcaster" in str(caught.value)


def test_every_missing_required_field_is_named() -> None:
    with pytest.raises(SerializationError, match=r"lacks field.*amount, order_id"):
        Codec().decode(Paid, {})


def test_money_stored_without_its_amount_names_the_missing_amount() -> None:
    with pytest.raises(SerializationError, match="amount"):
        Codec().decode(Paid, {"order_id": "o-1", "amount": {"currency": "USD"}})


def test_invalid_nested_value_object_data_is_a_serialization_error() -> None:
    with pytest.raises(SerializationError, match="Address") as caught:
        Codec().decode(Moved, {"to": {"street": "  ", "city": "Paris"}})

    assert "street: is required" in str(caught.value)


@pytest.mark.parametrize(
    "amount",
    [
        {"amount": "1.001", "currency": "USD"},
        {"amount": "-1.00", "currency": "USD"},
        {"amount": "NaN", "currency": "USD"},
        {"amount": "1.00", "currency": "XYZ"},
        {"amount": 1, "currency": "USD"},
    ],
)
def test_invalid_stored_money_is_a_serialization_error(amount: dict[str, Any]) -> None:
    with pytest.raises(SerializationError, match="Paid"):
        Codec().decode(Paid, {"order_id": "o-1", "amount": amount})


def test_an_invalid_stored_identity_is_a_serialization_error() -> None:
    with pytest.raises(SerializationError, match="OrderId needs a non-empty string"):
        Codec().decode(Paid, {"order_id": "  ", "amount": {"amount": "1.00", "currency": "USD"}})


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("price", "twelve"),
        ("at", "yesterday"),
        ("day", "2024-13-01"),
        ("ref", "not-a-uuid"),
        ("colour", "green"),
        ("currency", "XYZ"),
        ("address", "1 Main St"),
    ],
)
def test_a_malformed_stored_value_is_a_serialization_error(name: str, bad: object) -> None:
    codec = Codec()
    data = {**codec.encode(everything()), name: bad}

    with pytest.raises(SerializationError, match=r"EverythingHappened|Address"):
        codec.decode(EverythingHappened, data)


def test_data_that_is_not_a_mapping_is_a_serialization_error() -> None:
    with pytest.raises(SerializationError):
        Codec().decode(Paid, ["o-1"])  # type: ignore[arg-type]


# -- the event registry ---------------------------------------------------------------------


def test_the_registry_round_trips_registered_events() -> None:
    registry = EventRegistry([Paid])
    event = Paid(OrderId("o-1"), Money.of("9.99", "USD"))

    assert registry.decode("Paid", 1, registry.encode(event)) == event
    assert "Paid" in registry
    assert registry.class_for("Paid") is Paid


def test_an_event_type_can_be_named_explicitly() -> None:
    registry = EventRegistry([Renamed])

    assert "OrderPaid" in registry
    assert "Renamed" not in registry
    assert registry.class_for("OrderPaid") is Renamed


def test_one_event_type_claimed_by_two_classes_is_refused() -> None:
    registry = EventRegistry([Renamed])

    with pytest.raises(
        ConfigurationError, match="'OrderPaid' is claimed by Renamed and AlsoOrderPaid"
    ):
        registry.register(AlsoOrderPaid)

    assert registry.class_for("OrderPaid") is Renamed


def test_registering_the_same_class_twice_is_harmless() -> None:
    registry = EventRegistry([Paid])

    registry.register(Paid)

    assert registry.class_for("Paid") is Paid


def test_only_domain_events_can_be_registered() -> None:
    with pytest.raises(ConfigurationError, match="is not a DomainEvent subclass"):
        EventRegistry([Address])  # type: ignore[list-item]


def test_encoding_an_unregistered_event_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="Paid is not registered"):
        EventRegistry([Stamped]).encode(Paid(OrderId("o-1"), Money.of(1, "USD")))


def test_encoding_an_event_whose_type_name_belongs_to_another_class_is_refused() -> None:
    registry = EventRegistry([Renamed])

    with pytest.raises(ConfigurationError, match="AlsoOrderPaid is not registered"):
        registry.encode(AlsoOrderPaid(OrderId("o-1")))


def test_decoding_an_unknown_event_type_is_a_serialization_error() -> None:
    with pytest.raises(SerializationError, match="unknown event type 'Refunded'"):
        EventRegistry([Paid]).decode("Refunded", 1, {})


def test_decoding_an_older_schema_without_an_upcaster_says_to_register_one() -> None:
    with pytest.raises(SerializationError, match="schema v2 but ShapeV3 is v3") as caught:
        EventRegistry([ShapeV3]).decode("ShapeV3", 2, {"name": "x"})

    assert "register an upcaster for ShapeV3 v2" in str(caught.value)


def test_decoding_a_newer_schema_says_it_was_written_by_newer_code() -> None:
    with pytest.raises(SerializationError, match="schema v4 but ShapeV3 is v3") as caught:
        EventRegistry([ShapeV3]).decode("ShapeV3", 4, {"name": "x"})

    assert "written by newer code" in str(caught.value)


def test_decoding_the_current_schema_works() -> None:
    assert EventRegistry([ShapeV3]).decode("ShapeV3", 3, {"name": "x"}) == ShapeV3("x")


def test_the_loading_decoder_gives_what_decode_gives() -> None:
    registry = EventRegistry([EverythingHappened, Paid])
    event = everything()
    fresh = Paid(OrderId("o-1"), Money.of("98765.43", "GBP"))  # an amount not interned yet
    decoder = registry.decoder_for("Paid", 1)

    assert registry.decoder_for("EverythingHappened", 1)(
        json.loads(json.dumps(registry.encode(event)))) == event
    assert decoder(json.loads(json.dumps(registry.encode(fresh)))) == fresh
    assert decoder(registry.encode(fresh)).amount is fresh_decoded_amount(registry, fresh)


def fresh_decoded_amount(registry: EventRegistry, event: Paid) -> Money:
    decoded = registry.decode("Paid", 1, registry.encode(event))
    assert isinstance(decoded, Paid)
    return decoded.amount  # interned: the same instance every time
