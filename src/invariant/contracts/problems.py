"""Translating pydantic's errors into invariant's FieldErrors (field, message, code)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError as PydanticValidationError
from pydantic_core import ErrorDetails

from invariant.domain.errors import FieldError, ValidationError

# pydantic error type -> invariant code. Types not listed keep pydantic's (stable) name.
_CODES: dict[str, str] = {
    "missing": "required",
    "extra_forbidden": "unknown_field",
    "model_type": "invalid_type",
    "model_attributes_type": "invalid_type",
    "dict_type": "invalid_type",
    "string_too_short": "too_short",
    "too_short": "too_short",
    "string_too_long": "too_long",
    "too_long": "too_long",
    "greater_than": "too_small",
    "greater_than_equal": "too_small",
    "less_than": "too_large",
    "less_than_equal": "too_large",
    "literal_error": "invalid_choice",
    "enum": "invalid_choice",
    "string_pattern_mismatch": "invalid_format",
    "timezone_aware": "timezone_required",
    "invalid_key": "invalid_key",
}
_TYPE_SUFFIXES = ("_type", "_parsing", "_from_datetime_inexact", "_from_float")

_MESSAGES: dict[str, str] = {
    "required": "is required",
    "unknown_field": "is not a field of {subject}; remove it",
    "invalid_key": "field names must be strings",
    "timezone_required": (
        "needs a time zone (e.g. 2024-05-01T12:00:00Z); naive date-times are refused"
    ),
}


def code_for(error_type: str) -> str:
    """The invariant code for a pydantic error type."""
    if error_type in _CODES:
        return _CODES[error_type]
    if error_type.endswith(_TYPE_SUFFIXES):
        return "invalid_type"
    return error_type


def field_error(detail: ErrorDetails, subject: str) -> FieldError:
    """One pydantic error detail as a FieldError (the path joined with dots)."""
    path = ".".join(str(part) for part in detail["loc"])
    code = code_for(detail["type"])
    known = _MESSAGES.get(code)
    # pydantic's own messages may hold braces (a pattern such as ^[A-Z]{3}$): not templates
    message = known.format(subject=subject) if known is not None else detail["msg"]
    return FieldError(path, message, code)


def translate(exc: PydanticValidationError, subject: str) -> ValidationError:
    """pydantic's ValidationError as invariant's, listing every problem."""
    details: list[ErrorDetails] = exc.errors(include_url=False, include_context=False)
    return ValidationError([field_error(d, subject) for d in details], subject=subject)


def not_an_object(data: Any, subject: str) -> ValidationError:
    """The error for input that is not a mapping at all."""
    return ValidationError.single(
        "",
        f"expected an object with the fields of {subject}, got {type(data).__name__}",
        "invalid_type",
        subject=subject,
    )
