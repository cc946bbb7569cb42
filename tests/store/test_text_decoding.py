"""Decoding stored JSON text straight to typed events (msgspec): the codec's results, faster.

The text decoders are a fast path: for text they accept they must give exactly what the
codec gives from the parsed data (values and types), and they must refuse what the codec
refuses, so that callers fall back to the codec and report it.
"""

from __future__ import annotations

import enum
import types
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from examples.bank.domain import AccountOpened, MoneyDeposited
from invariant.domain import DomainEvent, Money, SerializationError, ValidationError, ValueObject
from invariant.store import Codec, EventRegistry, EventStore, MemoryStorage
from invariant.store.batch import decode_log_page
from tests.store.test_codec import (
    Address,
    EverythingHappened,
    Moved,
    OrderId,
    Paid,
    Stamped,
    everything,
)


class Size(enum.Enum):
    SMALL = 1
    LARGE = 2


@dataclass(frozen=True)
class Plain(DomainEvent):
    """Every field is one msgspec reads exactly as the codec does."""

    name: str
    count: int
    flag: bool
    day: date
    ref: UUID
    size: Size
    home: Address
    tags: list[str]
    pairs: dict[str, int]
    seen: tuple[date, ...]
    anything: Any
    note: str | None = None
    labels: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Slotted(DomainEvent):
    amount: int
    total: Money


@dataclass(frozen=True)
class Floaty(DomainEvent):
    ratio: float
    price: Decimal


@dataclass(frozen=True)
class Normalised(ValueObject):
    """A value object with its own __post_init__: the codec never runs it on decode."""

    code: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", self.code.upper())


@dataclass(frozen=True)
class WithNormalised(DomainEvent):
    value: Normalised


def plain() -> Plain:
    return Plain("n", 3, True, date(2024, 3, 1), UUID(int=7), Size.LARGE,
                 Address("1 Main St", "Paris"), ["a"], {"x": 1}, (date(2024, 1, 2),),
                 {"free": [1, "two", None]}, "hi", ["l"])


CLASSES = [EverythingHappened, Paid, Moved, Stamped, MoneyDeposited, AccountOpened, Plain,
           Slotted, Floaty, WithNormalised]


def both(cls: type[Any], text: str | bytes) -> tuple[Any, Any]:
    """(the text decoder's result, the codec's result from the parsed data)."""
    codec = Codec()
    return codec.for_class(cls).decode_text(text), codec.decode(cls, orjson.loads(text))


def assert_same(fast: Any, careful: Any) -> None:
    assert fast == careful
    assert type(fast) is type(careful)
    for name in careful.__dataclass_fields__:
        if hasattr(careful, name):
            assert type(getattr(fast, name)) is type(getattr(careful, name)), name


@pytest.mark.parametrize("event", [
    everything(), Paid(OrderId("o-1"), Money.of("9.99", "USD")),
    Moved(Address("1 Main St", "Paris")), MoneyDeposited(Money.of("10.00", "USD")),
    AccountOpened("owner", Money.of("123456.78", "KWD")), plain(),
    Slotted(4, Money.of("7", "EUR")), Floaty(2.5, Decimal("1.10")),
    WithNormalised(Normalised("abc")),
], ids=lambda e: type(e).__name__)
def test_stored_text_decodes_to_what_the_codec_makes(event: DomainEvent) -> None:
    text = orjson.dumps(Codec().encode(event))

    fast, careful = both(type(event), text)

    assert_same(fast, careful)
    assert fast == event or type(event) is WithNormalised


def test_classes_of_plain_fields_are_built_by_msgspec_itself() -> None:
    codec = Codec()

    # a C method: no generated Python code between the text and the object
    assert isinstance(codec.for_class(Plain).decode_text, types.BuiltinMethodType)
    assert isinstance(codec.for_class(Moved).decode_text, types.BuiltinMethodType)
    # Money, Decimal, float, datetime or a value object with its own __post_init__: the
    # stored shape is read by msgspec, the object is built by generated code
    for cls in (MoneyDeposited, Floaty, Stamped, WithNormalised, EverythingHappened):
        assert isinstance(codec.for_class(cls).decode_text, types.FunctionType), cls


def test_missing_fields_take_their_defaults_and_a_factory_runs_per_decode() -> None:
    data = Codec().encode(plain())
    del data["note"], data["labels"]
    decode = Codec().for_class(Plain).decode_text

    first, second = decode(orjson.dumps(data)), decode(orjson.dumps(data))

    assert first.note is None
    assert first.labels == []
    assert first.labels is not second.labels


def test_a_stored_int_in_a_float_field_stays_an_int_as_the_codec_keeps_it() -> None:
    fast, careful = both(Floaty, b'{"ratio": 5, "price": "1"}')

    assert_same(fast, careful)
    assert type(fast.ratio) is int


def test_a_value_object_with_its_own_post_init_is_decoded_without_running_it() -> None:
    fast, careful = both(WithNormalised, b'{"value": {"code": "abc"}}')

    assert fast.value.code == careful.value.code == "abc"


MALFORMED = [
    (MoneyDeposited, b"{}"),
    (MoneyDeposited, b'{"amount": "10.00"}'),
    (MoneyDeposited, b'{"amount": {"currency": "USD"}}'),
    (MoneyDeposited, b'{"amount": {"amount": "1.001", "currency": "USD"}}'),
    (MoneyDeposited, b'{"amount": {"amount": "-1.00", "currency": "USD"}}'),
    (MoneyDeposited, b'{"amount": {"amount": "1.00", "currency": "XYZ"}}'),
    (MoneyDeposited, b'{"amount": {"amount": 1, "currency": "USD"}}'),
    (Paid, b'{"order_id": "  ", "amount": {"amount": "1.00", "currency": "USD"}}'),
    (Moved, b'{"to": {"street": "  ", "city": "Paris"}}'),
    (Moved, b'{"to": "1 Main St"}'),
    (Stamped, b'{"at": "yesterday"}'),
    (Floaty, b'{"ratio": 1.5, "price": "twelve"}'),
    (Plain, b'{"name": "n"}'),
    (Slotted, b"[1, 2]"),
]


@pytest.mark.parametrize(("cls", "text"), MALFORMED)
def test_data_the_codec_refuses_is_refused_by_the_text_decoder_too(
    cls: type[Any], text: bytes
) -> None:
    with pytest.raises(SerializationError):
        Codec().decode(cls, orjson.loads(text))
    with pytest.raises(Exception):  # noqa: B017, PT011 -- any error: the caller falls back
        Codec().for_class(cls).decode_text(text)


def test_a_page_with_malformed_rows_fails_with_the_codecs_error() -> None:
    registry = EventRegistry([MoneyDeposited])
    store = EventStore(MemoryStorage(), registry)
    good = '{"amount": {"amount": "1.00", "currency": "USD"}}'
    for _, bad in [m for m in MALFORMED if m[0] is MoneyDeposited]:
        with pytest.raises(SerializationError) as careful:
            registry.decode("MoneyDeposited", 2, orjson.loads(bad))
        rows = [(1, "a", "MoneyDeposited", 2, good), (2, "a", "MoneyDeposited", 2, bad.decode())]
        with pytest.raises(SerializationError) as paged:
            decode_log_page(store, rows)
        assert str(paged.value) == str(careful.value)


def test_data_the_codec_accepts_only_loosely_still_decodes_through_the_fallback() -> None:
    # The codec passes a stored string into an int field as it is; msgspec refuses it, and
    # the page falls back to the codec, so the result is the codec's.
    store = EventStore(MemoryStorage(), EventRegistry([Slotted]))
    text = '{"amount": "4", "total": {"amount": "1.00", "currency": "USD"}}'

    [event] = decode_log_page(store, [(1, "a", "Slotted", 1, text)]).events

    assert event == Codec().decode(Slotted, orjson.loads(text))


def test_an_integer_beyond_64_bits_is_read_exactly() -> None:
    # The one difference from the codec's parser (orjson reads such a number as a float);
    # invariant never writes one: its encoder refuses them.
    fast = Codec().for_class(Slotted).decode_text(
        b'{"amount": 123456789012345678901234567890, '
        b'"total": {"amount": "1.00", "currency": "USD"}}')

    assert fast.amount == 123456789012345678901234567890
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps(fast.amount)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                 max_size=3),
    max_leaves=6,
)


def field_values(cls: type[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Stored data for ``cls``: each field either well formed (from a real event) or any
    JSON value, some fields missing."""
    good = Codec().encode(everything() if cls is EverythingHappened else plain())
    return st.fixed_dictionaries({}, optional={
        name: st.just(value) | json_values for name, value in good.items()
    })


@pytest.mark.parametrize("cls", [EverythingHappened, Plain])
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_whatever_the_text_decoder_accepts_the_codec_decodes_alike(
    cls: type[Any], data: st.DataObject
) -> None:
    stored = data.draw(field_values(cls))
    text = orjson.dumps(stored)
    try:
        fast = Codec().for_class(cls).decode_text(text)
    except Exception:
        return  # refused: the caller falls back to the codec
    try:
        careful = Codec().decode(cls, orjson.loads(text))
    except (SerializationError, ValidationError) as exc:
        pytest.fail(f"the text decoder accepted {stored!r}, which the codec refuses: {exc}")
    assert_same(fast, careful)


def test_a_naive_stored_time_is_read_as_utc_as_the_codec_reads_it() -> None:
    fast, careful = both(Stamped, b'{"at": "2024-03-01T10:30:00"}')

    assert_same(fast, careful)
    assert fast.at.tzinfo is not None
