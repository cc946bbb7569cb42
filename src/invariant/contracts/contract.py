"""The Contract base: one declaration that validates input and is the value object."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import FrozenInstanceError, dataclass
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from invariant.contracts.problems import not_an_object, translate
from invariant.contracts.rules import Rule, rules_of
from invariant.contracts.shapes import FieldShape, shape_of
from invariant.contracts.value_object import FieldCodec, ValueCodec
from invariant.domain.errors import (
    ConfigurationError,
    FieldError,
    SerializationError,
    ValidationError,
)

TABLE_COLUMNS = ("id", "version", "created_at", "updated_at")


@dataclass(frozen=True, slots=True)
class TableOptions:
    """Where a contract is stored: the table name and the length of its string ids."""

    name: str
    id_length: int = 64


class Contract(BaseModel):
    """A schema-driven value object: fields, rules, and (optionally) its table.

    Declare fields with :func:`~invariant.contracts.field` and cross-field rules with
    :func:`~invariant.contracts.rule`; pass ``table=`` to store it as rows::

        class UserProfile(Contract, table="users"):
            email: str = field(format="email", length=255, unique=True)

    An instance is immutable, equal by value, and valid: it is validated once when created
    (:meth:`create`, or the constructor) and again when :meth:`replace` builds a new one.
    Every failure is invariant's :class:`~invariant.domain.errors.ValidationError` listing
    all problems. Values serialize only explicitly: :meth:`to_json`, :meth:`to_row`.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", allow_inf_nan=False, hide_input_in_errors=True
    )

    __contract_table__: ClassVar[TableOptions | None] = None
    __contract_shapes__: ClassVar[tuple[FieldShape, ...]] = ()
    __contract_rules__: ClassVar[tuple[Rule, ...]] = ()
    __contract_codec__: ClassVar[ValueCodec] = ValueCodec(())

    def __init_subclass__(
        cls, *, table: str | None = None, id_length: int = 64, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if table is not None:
            cls.__contract_table__ = TableOptions(table, id_length)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        shapes = tuple(
            shape_of(cls.__name__, name, info) for name, info in cls.model_fields.items()
        )
        cls.__contract_shapes__ = shapes
        cls.__contract_codec__ = ValueCodec(tuple(FieldCodec.of(s) for s in shapes))
        cls.__contract_rules__ = rules_of(cls)
        if cls.__contract_table__ is not None:
            _check_table_fields(cls.__name__, shapes)

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except PydanticValidationError as exc:
            raise translate(exc, type(self).__name__) from None

    @classmethod
    def create(cls, data: object) -> Self:
        """Validate any input (a mapping of field values) into a value, or raise
        :class:`~invariant.domain.errors.ValidationError` listing every problem."""
        if not isinstance(data, Mapping):
            raise not_an_object(data, cls.__name__)
        bad_keys = [FieldError(str(key), "field names must be strings", "invalid_key")
                    for key in data if not isinstance(key, str)]
        try:
            value = cls.model_validate({k: v for k, v in data.items() if isinstance(k, str)})
        except PydanticValidationError as exc:
            errors = [*translate(exc, cls.__name__).errors, *bad_keys]
            raise ValidationError(errors, subject=cls.__name__) from None
        if bad_keys:
            raise ValidationError(bad_keys, subject=cls.__name__)
        return value

    @classmethod
    def from_json(cls, data: object) -> Self:
        """The value of :meth:`to_json` data (validated like :meth:`create`)."""
        return cls.create(data)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        """The value stored in a row; a row that no longer satisfies the contract raises
        :class:`~invariant.domain.errors.SerializationError`."""
        try:
            return cls.create(cls.__contract_codec__.row_input(row))
        except ValidationError as exc:
            raise SerializationError(
                f"a stored {cls.__name__} no longer satisfies its contract ({exc}); migrate "
                "the stored rows or relax the contract"
            ) from exc

    def replace(self, **changes: Any) -> Self:
        """A new value with ``changes`` applied, validated again (rules included)."""
        return type(self).create({**self.values(), **changes})

    def values(self) -> dict[str, Any]:
        """The field values as they are (Python objects, not serialized)."""
        return {name: getattr(self, name) for name in type(self).model_fields}

    def to_json(self) -> dict[str, Any]:
        """JSON-compatible data; date-times as UTC ISO 8601, decimals and UUIDs as text."""
        return type(self).__contract_codec__.to_json(self)

    def to_row(self) -> dict[str, Any]:
        """The column values of the contract's fields (for the generated table)."""
        return type(self).__contract_codec__.to_row(self)

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(
            f"{type(self).__name__} is immutable: use replace({name}=...) or a method that "
            "returns a new value"
        )

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"{type(self).__name__} is immutable")

    @model_validator(mode="after")
    def _contract_rules(self) -> Self:
        problems = [*self._text_problems(), *self._rule_problems()]
        if problems:
            raise PydanticValidationError.from_exception_data(type(self).__name__, problems)
        return self

    def _text_problems(self) -> list[InitErrorDetails]:
        found: list[InitErrorDetails] = []
        for shape in type(self).__contract_shapes__:
            value = getattr(self, shape.name)
            if isinstance(value, str) and not _encodable(value):
                error = PydanticCustomError(
                    "invalid_text", "contains characters that are not valid Unicode text"
                )
                found.append({"type": error, "loc": (shape.name,), "input": value})
        return found

    def _rule_problems(self) -> list[InitErrorDetails]:
        found: list[InitErrorDetails] = []
        for rule in type(self).__contract_rules__:
            if not rule.check(self):
                error = PydanticCustomError(rule.code, rule.message)
                loc = (rule.field,) if rule.field else ()
                found.append({"type": error, "loc": loc, "input": None})
        return found


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_table_fields(contract: str, shapes: tuple[FieldShape, ...]) -> None:
    for shape in shapes:
        if shape.name in TABLE_COLUMNS:
            raise ConfigurationError(
                f"{contract}.{shape.name}: the table already has {', '.join(TABLE_COLUMNS)} "
                "columns; rename the field"
            )
        longest = max((len(str(c)) for c in shape.choices), default=0)
        if shape.db.length is not None and longest > shape.db.length:
            raise ConfigurationError(
                f"{contract}.{shape.name}: a choice is {longest} characters long but the "
                f"column length is {shape.db.length}; raise length="
            )
