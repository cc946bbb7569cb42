"""Finding the contracts named on the command line (``package.module[:ATTR]``)."""

from __future__ import annotations

import importlib
from typing import Any

from invariant.contracts.contract import Contract
from invariant.domain.errors import ConfigurationError


def load_contracts(spec: str) -> list[type[Contract]]:
    """The contracts of ``module`` (those it defines) or of ``module:ATTR`` (a contract or
    a list of them)."""
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            f"cannot import {module_name!r} ({exc}); pass --contracts package.module[:ATTR] "
            "and run from the directory that holds the package"
        ) from exc
    if attr:
        if not hasattr(module, attr):
            raise ConfigurationError(f"{module_name} has no attribute {attr!r}")
        found = _as_contracts(getattr(module, attr), spec)
    else:
        found = [v for v in vars(module).values()
                 if _is_contract(v) and v.__module__ == module.__name__]
    if not found:
        raise ConfigurationError(f"{spec} declares no contract")
    return found


def stored(contracts: list[type[Contract]]) -> list[type[Contract]]:
    """The contracts that declare a table."""
    return [c for c in contracts if c.__contract_table__ is not None]


def _is_contract(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, Contract) and value is not Contract


def _as_contracts(value: Any, spec: str) -> list[type[Contract]]:
    if _is_contract(value):
        return [value]
    items = list(value) if isinstance(value, list | tuple) else []
    if not items or not all(_is_contract(item) for item in items):
        raise ConfigurationError(f"{spec} is not a contract or a list of contracts")
    return items
