"""Contracts: one declaration drives validation, the value object, its table, its migration
and its JSON Schema; ``invariant contracts check`` fails when they drift apart."""

from invariant.contracts.contract import Contract, TableOptions
from invariant.contracts.fields import DbColumn, field
from invariant.contracts.rules import rule
from invariant.contracts.types import UtcDateTime

__all__ = ["Contract", "DbColumn", "TableOptions", "UtcDateTime", "field", "rule"]
