"""Decoders from stored JSON text straight to typed classes, built with msgspec.

The codec (:mod:`invariant.store.codec`) turns JSON *data* into typed objects in Python,
field by field. Reading long logs, most of that time goes into the intermediate dicts and
into setting attributes one call at a time. msgspec parses the text and builds the objects
in C, from the same type hints, once per class:

* a class whose every field msgspec reads exactly as the codec does (str, int, bool, date,
  UUID, enums of str or of int values, ``Any``, lists, tuples, dicts and optionals of
  those, nested dataclasses of those) is decoded by msgspec straight into the class;
* any other class is decoded into a generated msgspec ``Struct`` of the same fields, its
  *stored shape*: the fields above are read by msgspec, required ``Money`` fields as their
  two strings (then looked up among the interned values), and the rest (``Decimal``,
  ``datetime``, ``float``, ``Identity``, ``Currency``, nested classes holding those) is
  handed to the codec's own converters, so it comes out exactly as the codec makes it.

These decoders are a fast path only. They raise on anything they do not accept, and the
caller then decodes the same text with the codec, which reports malformed data precisely
(same errors, same messages). For text they accept, the result is the codec's, with one
exception: an integer beyond 64 bits (which invariant never writes: its encoder refuses
them) is read exactly, where the codec's JSON parser would read a float.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any
from uuid import UUID

import msgspec

from invariant.domain.identity import Identity
from invariant.domain.money import _INTERNED, Currency, Money
from invariant.domain.values import ValueObject

TextDecoder = Callable[[str | bytes], Any]
FieldPlan = tuple[str, Any, Callable[[Any], Any] | None, tuple[str, Any]]
"""``(name, type hint, the codec's converter or None, (default kind, default))`` of one
field, as the codec plans it; the kind is ``required``, ``value`` or ``factory``."""

_NONE_INTERNED: Mapping[str, Money] = types.MappingProxyType({})


class _StoredMoney(msgspec.Struct, gc=False):
    """Money as it is stored: ``{"amount": "10.00", "currency": "USD"}``."""

    amount: str
    currency: str


def build_text_decoder(cls: type[Any], fields: Sequence[FieldPlan], *, fills_dict: bool,
                       validates: bool) -> TextDecoder | None:
    """A decoder of ``cls`` from JSON text, or None when msgspec cannot read its shape.

    ``fills_dict``: instances take their fields straight into ``__dict__``;
    ``validates``: ``validate()`` runs on the decoded object (value objects).
    """
    if _native_dataclass(cls, frozenset()):
        decode: TextDecoder = msgspec.json.Decoder(cls).decode
        return decode
    return _shape_decoder(cls, fields, fills_dict=fills_dict, validates=validates)


def _shape_decoder(cls: type[Any], fields: Sequence[FieldPlan], *, fills_dict: bool,
                   validates: bool) -> TextDecoder | None:
    """msgspec reads the stored shape; generated code builds ``cls`` from it."""
    namespace: dict[str, Any] = {
        "cls": cls, "new": object.__new__, "setattr": object.__setattr__,
        "interned": _INTERNED.get, "none": _NONE_INTERNED, "stored_money": Money.from_stored,
    }
    shape: list[tuple[str, Any, Any]] = []
    lines = ["def decode(text):", "    s = parse(text)", "    obj = new(cls)"]
    if fills_dict:
        lines.append("    fields = obj.__dict__")
    for i, (name, hint, convert, (kind, default)) in enumerate(fields):
        read = f"getattr(s, {name!r})"
        if kind == "required" and hint is Money:
            shape.append((name, _StoredMoney, msgspec.NODEFAULT))
            lines.append(f"    m_{i} = {read}")
            lines.append(f"    v_{i} = interned(m_{i}.currency, none).get(m_{i}.amount)")
            value = f"stored_money(m_{i}.amount, m_{i}.currency) if v_{i} is None else v_{i}"
        else:
            native = _native(hint, frozenset())
            shape.append((name, hint if native else Any, _default(kind, default)))
            if native or convert is None:
                value = read
            else:
                namespace[f"convert_{i}"] = convert  # the codec applies it to defaults too
                value = f"convert_{i}({read})"
        if fills_dict:
            lines.append(f"    fields[{name!r}] = {value}")
        else:
            lines.append(f"    setattr(obj, {name!r}, {value})")
    if validates:
        lines.append("    obj.validate()")
    lines.append("    return obj")
    try:
        stored = msgspec.defstruct(f"{cls.__name__}Stored", shape, gc=False)
        namespace["parse"] = msgspec.json.Decoder(stored).decode
    except (TypeError, ValueError):
        return None  # a field name or default msgspec cannot take: the codec reads it alone
    exec("\n".join(lines), namespace)  # generated from the dataclass's own field names
    decode: TextDecoder = namespace["decode"]
    return decode


def _default(kind: str, default: Any) -> Any:
    if kind == "value":
        return default
    if kind == "factory":
        return msgspec.field(default_factory=default)
    return msgspec.NODEFAULT


def _native(tp: Any, seen: frozenset[type[Any]]) -> bool:
    """Whether msgspec reads ``tp`` exactly as the codec does, for every text it accepts.

    Not native: ``float`` (msgspec turns a stored 5 into 5.0, the codec keeps the int),
    ``Decimal`` (msgspec reads a stored number exactly, the codec through a float),
    ``datetime`` (the codec reads a naive time as UTC), and the domain's own value types.
    """
    if tp in (str, int, bool, type(None), date, UUID) or tp is Any:
        return True
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return len(inner) == 1 and _native(inner[0], seen)
    if origin is tuple:
        return len(args) == 2 and args[1] is Ellipsis and _native(args[0], seen)
    if origin is list:
        return _native(args[0], seen)
    if origin is dict:
        return args[0] is str and _native(args[1], seen)
    if tp in (list, tuple, dict):
        return True
    if not isinstance(tp, type) or issubclass(tp, Money | Currency | Identity):
        return False
    if issubclass(tp, enum.Enum):
        return _plain_enum(tp)
    return dataclasses.is_dataclass(tp) and _native_dataclass(tp, seen)


def _plain_enum(tp: type[enum.Enum]) -> bool:
    """Enums of all-str or all-int values: msgspec accepts exactly the stored values."""
    if issubclass(tp, enum.Flag):
        return False
    kinds = {type(member.value) for member in tp}
    return kinds == {str} or kinds == {int}


def _native_dataclass(cls: type[Any], seen: frozenset[type[Any]]) -> bool:
    """msgspec builds ``cls`` as the codec does: without ``__init__``, every field set from
    the stored data (or its default), ``validate()`` run on value objects."""
    if cls in seen or not dataclasses.is_dataclass(cls):
        return False
    post_init = getattr(cls, "__post_init__", None)
    if issubclass(cls, ValueObject):
        if post_init is not ValueObject.__post_init__:
            return False  # the codec runs validate() only, never another __post_init__
    elif post_init is not None:
        return False
    try:
        hints = typing.get_type_hints(cls)
    except NameError:
        return False
    fields = dataclasses.fields(cls)
    if not all(f.init and _native(hints[f.name], seen | {cls}) for f in fields):
        return False  # the codec leaves init=False fields alone; msgspec would read them
    try:
        msgspec.json.Decoder(cls)
    except TypeError:
        return False  # e.g. InitVar pseudo-fields
    return True


__all__ = ["FieldPlan", "TextDecoder", "build_text_decoder"]
