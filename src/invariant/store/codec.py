"""Explicit, type-directed conversion between dataclasses and JSON-compatible data.

Each event (or value object) class is inspected once: its declared fields and their type
hints give one encoder and one decoder per field. Nothing is pickled and no ``__dict__`` is
dumped: a field type we cannot convert is refused when the class is registered, not when the
first event is written.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson

from invariant.domain.errors import ConfigurationError, SerializationError, ValidationError
from invariant.domain.identity import Identity
from invariant.domain.money import _INTERNED, Currency, Money
from invariant.domain.values import ValueObject
from invariant.store.text_decoding import FieldPlan, build_text_decoder

Encoder = Callable[[Any], Any]
Decoder = Callable[[Any], Any]

_PASSTHROUGH = (str, int, bool, float, type(None))


def _encode_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        raise SerializationError(
            f"naive datetime {value.isoformat()} cannot be stored: use an aware datetime "
            "(e.g. datetime.now(UTC))"
        )
    return value.astimezone(UTC).isoformat()


def _decode_datetime(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _encode_money(value: Money) -> dict[str, str]:
    return {"amount": str(value.amount), "currency": value.currency.code}


_NONE_INTERNED: Mapping[str, Money] = types.MappingProxyType({})


def _decode_money(value: dict[str, str]) -> Money:
    try:
        amount, currency = value["amount"], value["currency"]
        interned = _INTERNED.get(currency, _NONE_INTERNED).get(amount)
        if interned is not None:
            return interned
    except KeyError as exc:
        raise SerializationError(
            f"stored Money {value!r} lacks {exc.args[0]!r}: it needs amount and currency"
        ) from None
    except TypeError:
        raise SerializationError(f"stored Money must be an object, got {value!r}") from None
    return Money.from_stored(amount, currency)


class _ClassCodec:
    """Encoder and decoder of one dataclass, generated once from its fields.

    Decoding builds the instance without calling ``__init__``: stored data are facts that
    were valid when written, and nested value objects are still rebuilt (and checked) by
    their own decoders. The generated code is plain attribute assignment, field by field.
    """

    __slots__ = ("cls", "decode_fast", "decode_hot", "decode_text", "encode", "encoders",
                 "required")

    def __init__(
        self,
        cls: type[Any],
        encoders: list[tuple[str, Encoder | None]],
        fields: list[FieldPlan],
        required: frozenset[str],
    ) -> None:
        self.cls = cls
        self.encoders = encoders
        self.required = required
        decoders = [(name, dec, default) for name, _, dec, default in fields]
        self.decode_fast = _generate_decoder(cls, decoders)
        # For loops over many stored events that fall back to decode() on any exception:
        # Money fields look their interned value up inline. Malformed data may raise other
        # exceptions here than in decode_fast, never give another result.
        self.decode_hot = _generate_decoder(cls, decoders, inline_money=True)
        # The same, from the stored JSON text: msgspec builds the object (see
        # invariant.store.text_decoding), or, for shapes it cannot read, orjson then decode_hot.
        self.decode_text: Callable[[str | bytes], Any] = build_text_decoder(
            cls, fields, fills_dict=_fills_dict(cls), validates=_is_value_object(cls)
        ) or _parse_then(self.decode_hot)
        self.encode: Callable[[Any], dict[str, Any]] = _generate_encoder(encoders)

    def decode(self, data: dict[str, Any]) -> Any:
        try:
            return self.decode_fast(data)
        except SerializationError:
            raise
        except KeyError:
            missing = sorted(self.required - data.keys()) if isinstance(data, dict) else []
            raise SerializationError(
                f"{self.cls.__name__} data lacks field(s) {', '.join(missing) or '?'}: "
                "register an upcaster that fills them for the stored schema version"
            ) from None
        except ValidationError as exc:
            raise SerializationError(
                f"stored data does not make a valid {self.cls.__name__}: {exc}"
            ) from exc
        except (TypeError, ValueError, ArithmeticError, AttributeError) as exc:
            raise SerializationError(
                f"cannot decode {self.cls.__name__} from {data!r}: {exc}"
            ) from exc


def _generate_encoder(encoders: list[tuple[str, Encoder | None]]
                      ) -> Callable[[Any], dict[str, Any]]:
    """Build ``encode(obj)`` returning one dict literal of the declared fields."""
    namespace: dict[str, Any] = {}
    items = []
    for i, (name, enc) in enumerate(encoders):
        # getattr for dunder-prefixed names: they are name-mangled on the instance
        read = f"getattr(obj, {name!r})" if name.startswith("__") else f"obj.{name}"
        if enc is None:
            items.append(f"{name!r}: {read}")
        else:
            namespace[f"enc_{i}"] = enc
            items.append(f"{name!r}: enc_{i}({read})")
    source = f"def encode(obj):\n    return {{{', '.join(items)}}}"
    exec(source, namespace)  # generated from the dataclass's own field names
    encode: Callable[[Any], dict[str, Any]] = namespace["encode"]
    return encode


def _generate_decoder(
    cls: type[Any], decoders: list[tuple[str, Decoder | None, tuple[str, Any]]],
    *, inline_money: bool = False,
) -> Callable[[dict[str, Any]], Any]:
    """Build ``decode(data)`` specialised to ``cls``'s fields."""
    namespace: dict[str, Any] = {"cls": cls, "new": object.__new__, "setattr": object.__setattr__,
                                 "interned": _INTERNED.get, "none": _NONE_INTERNED}
    lines = ["def decode(data):", "    obj = new(cls)"]
    has_dict = _fills_dict(cls)
    if has_dict:
        lines.append("    fields = obj.__dict__")
    for i, (name, dec, (kind, default)) in enumerate(decoders):
        if kind == "required":
            raw = f"data[{name!r}]"
        else:
            namespace[f"default_{i}"] = default
            raw = (
                f"(data[{name!r}] if {name!r} in data else default_{i}())"
                if kind == "factory" else f"data.get({name!r}, default_{i})"
            )
        if dec is _decode_money and kind == "required" and inline_money:
            # _decode_money's interned hit without its call; a miss (or a malformed value:
            # the caller falls back to the careful decoder) goes through it.
            namespace[f"dec_{i}"] = dec
            lines.append(f"    raw_{i} = {raw}")
            lines.append(
                f"    value_{i} = interned(raw_{i}['currency'], none).get(raw_{i}['amount'])")
            value = f"dec_{i}(raw_{i}) if value_{i} is None else value_{i}"
        elif dec is not None:
            namespace[f"dec_{i}"] = dec
            value = f"dec_{i}({raw})"
        else:
            value = raw
        if has_dict:
            lines.append(f"    fields[{name!r}] = {value}")
        else:
            lines.append(f"    setattr(obj, {name!r}, {value})")
    if _is_value_object(cls):
        lines.append("    obj.validate()")
    lines.append("    return obj")
    exec("\n".join(lines), namespace)
    decode: Callable[[dict[str, Any]], Any] = namespace["decode"]
    return decode


def _fills_dict(cls: type[Any]) -> bool:
    """Instances with a __dict__ take their fields straight into it (frozen dataclasses only
    guard attribute assignment); slotted classes go through object.__setattr__."""
    return "__slots__" not in cls.__dict__ and all(
        "__slots__" not in k.__dict__ or k is object for k in cls.__mro__[1:-1]
    ) and _instances_have_dict(cls)


def _parse_then(decode: Callable[[Any], Any]) -> Callable[[str | bytes], Any]:
    loads = orjson.loads

    def decode_text(text: str | bytes) -> Any:
        return decode(loads(text))

    return decode_text


class Codec:
    """Builds and caches encoders/decoders for dataclass types."""

    def __init__(self) -> None:
        self._classes: dict[type[Any], _ClassCodec] = {}

    def encode(self, obj: Any) -> dict[str, Any]:
        return self.for_class(type(obj)).encode(obj)

    def decode(self, cls: type[Any], data: dict[str, Any]) -> Any:
        return self.for_class(cls).decode(data)

    def for_class(self, cls: type[Any]) -> _ClassCodec:
        codec = self._classes.get(cls)
        if codec is None:
            codec = self._build(cls)
            self._classes[cls] = codec
        return codec

    def _build(self, cls: type[Any]) -> _ClassCodec:
        if not dataclasses.is_dataclass(cls):
            raise ConfigurationError(
                f"{cls.__name__} is not a dataclass: declare events and value objects with "
                "@dataclass(frozen=True) so their fields can be serialized explicitly"
            )
        if not _is_value_object(cls) and any(
            "__post_init__" in klass.__dict__ for klass in cls.__mro__
        ):
            raise ConfigurationError(
                f"{cls.__name__} has __post_init__ (its own or inherited): stored events are "
                "rebuilt without running it; derive values in properties, or make it a "
                "ValueObject with validate()"
            )
        try:
            hints = typing.get_type_hints(cls)
        except NameError as exc:
            raise ConfigurationError(
                f"cannot resolve the field types of {cls.__qualname__}: {exc}; define it at "
                "module level so its annotations can be resolved"
            ) from exc
        encoders: list[tuple[str, Encoder | None]] = []
        fields: list[FieldPlan] = []
        required: set[str] = set()
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            enc, dec = self._converters(hints[f.name], f"{cls.__name__}.{f.name}")
            encoders.append((f.name, enc))
            if f.default is not dataclasses.MISSING:
                default: tuple[str, Any] = ("value", f.default)
            elif f.default_factory is not dataclasses.MISSING:
                default = ("factory", f.default_factory)
            else:
                default = ("required", None)
                required.add(f.name)
            fields.append((f.name, hints[f.name], dec, default))
        return _ClassCodec(cls, encoders, fields, frozenset(required))

    def _converters(self, tp: Any, where: str) -> tuple[Encoder | None, Decoder | None]:
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if tp in _PASSTHROUGH or tp is Any:
            return None, None
        if origin in (typing.Union, types.UnionType):
            inner = [a for a in args if a is not type(None)]
            if len(inner) != 1:
                raise ConfigurationError(f"{where}: only 'X | None' unions can be serialized")
            enc, dec = self._converters(inner[0], where)
            if enc is None and dec is None:
                return None, None
            return _optional(enc), _optional(dec)
        if origin in (list, tuple) or tp in (list, tuple):
            item = args[0] if args else Any
            if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
                raise ConfigurationError(f"{where}: use tuple[X, ...] for sequences")
            ienc, idec = self._converters(item, where)
            make = tuple if (origin is tuple or tp is tuple) else list
            return _sequence(ienc, list), _sequence(idec, make)
        if origin is dict or tp is dict:
            if args and args[0] is not str:
                raise ConfigurationError(f"{where}: mapping keys must be str to be JSON objects")
            venc, vdec = self._converters(args[1] if args else Any, where)
            return _mapping(venc), _mapping(vdec)
        if not isinstance(tp, type):
            raise ConfigurationError(f"{where}: cannot serialize type {tp!r}")
        if issubclass(tp, Money):
            return _encode_money, _decode_money
        if issubclass(tp, Currency):
            return _attr("code"), Currency.of
        if issubclass(tp, Identity):
            return _attr("value"), tp
        if issubclass(tp, enum.Enum):
            return _attr("value"), tp
        if tp is Decimal:
            return str, Decimal
        if tp is datetime:
            return _encode_datetime, _decode_datetime
        if tp is date:
            return date.isoformat, date.fromisoformat
        if tp is UUID:
            return str, UUID
        if dataclasses.is_dataclass(tp):
            nested = self.for_class(tp)
            return nested.encode, nested.decode
        raise ConfigurationError(
            f"{where}: cannot serialize {tp.__name__}; use str, int, float, bool, Decimal, "
            "datetime, date, UUID, an Enum, an Identity, Money, a dataclass, or lists/dicts of them"
        )


def _instances_have_dict(cls: type[Any]) -> bool:
    try:
        probe = object.__new__(cls)
    except TypeError:
        return False
    return hasattr(probe, "__dict__")


def _is_value_object(cls: type[Any]) -> bool:
    return issubclass(cls, ValueObject)


def _attr(name: str) -> Encoder:
    def get(value: Any) -> Any:
        return getattr(value, name)

    return get


def _optional(conv: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    if conv is None:
        return lambda v: v

    def maybe(value: Any) -> Any:
        return None if value is None else conv(value)

    return maybe


def _sequence(
    conv: Callable[[Any], Any] | None, make: Callable[[Any], Any]
) -> Callable[[Any], Any]:
    if conv is None:
        return lambda v: make(v)
    return lambda v: make([conv(x) for x in v])


def _mapping(conv: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    if conv is None:
        return dict
    return lambda v: {k: conv(x) for k, x in v.items()}
