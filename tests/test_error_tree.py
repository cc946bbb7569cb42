"""Everything invariant raises on purpose sits in the one error tree under InvariantError.

The test reads every module of invariant: each exception class it defines, and each class
a ``raise`` statement names, must derive from :class:`InvariantError`, unless it is listed
below with the reason (a protocol of Python or of a library invariant plugs into), or is a
private signal (``_Name``) that the same module catches.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import invariant
from invariant.errors import InvariantError

OUTSIDE_THE_TREE: dict[tuple[str, str], str] = {
    # (module prefix, raised class) -> why it is not an InvariantError
    ("invariant", "NotImplementedError"): "an abstract member a subclass must provide",
    ("invariant.store", "AttributeError"): "a package's lazy __getattr__, as Python asks",
    ("invariant.store.records", "KeyError"): "a lookup by key answers as a mapping does",
    ("invariant.store.event_store", "ValueError"): "EventEnvelope._replace, as a named "
                                                   "tuple's answers",
    ("invariant.testing", "AssertionError"): "the test kit's failed expectation",
    ("invariant.resilience.caller", "AssertionError"): "the end of a retry loop no run "
                                                       "reaches (stamina re-raises)",
    ("invariant.state.repository", "AssertionError"): "the end of a retry loop no run "
                                                      "reaches",
    ("invariant.store.event_store", "AssertionError"): "a decoder placeholder replaced "
                                                       "before its first call",
    ("invariant.testing", "ConnectionError"): "a contract suite's simulated dropped "
                                              "connection",
    ("invariant.testing", "Boom"): "the failure a contract suite provokes inside a "
                                   "transaction and catches, to see it rolled back",
    ("invariant.store.sqlite", "Refused"): "the SQLite writer's signal that one job of a "
                                           "group commit refused itself; the writer hands "
                                           "the job its own InvariantError",
    ("invariant.cli", "Exit"): "typer's way for a command to exit with a status",
    ("invariant.sql.direct", "InvalidRequestError"): "a result of the driver's path answers "
                                                     "a misuse (inserted_primary_key of no "
                                                     "insert, or of an executemany) as "
                                                     "SQLAlchemy's own result does",
    ("invariant.contracts", "PydanticCustomError"): "pydantic's validator protocol; "
                                                    "contracts translate it into a "
                                                    "ValidationError",
    ("invariant.contracts", "FrozenInstanceError"): "a value object refuses changes as a "
                                                    "frozen dataclass does",
    ("invariant.sql.database", "DisconnectionError"): "SQLAlchemy's pool protocol: a "
                                                      "checked-out connection found dead "
                                                      "is replaced",
}


@dataclass(frozen=True)
class Raised:
    module: str
    line: int
    cls: type[BaseException]


def invariant_modules() -> Iterator[ModuleType]:
    yield invariant
    for info in pkgutil.walk_packages(invariant.__path__, "invariant."):
        yield importlib.import_module(info.name)


def raised_classes(module: ModuleType) -> Iterator[Raised]:
    """The exception classes ``raise`` statements of ``module`` name (``raise X(...)``,
    ``raise X``); raising what a helper returns or re-raising a caught error is left to
    the helper's own module."""
    tree = ast.parse(Path(inspect.getfile(module)).read_text())
    for node in ast.walk(tree):
        if not isinstance(node, ast.Raise) or node.exc is None:
            continue
        target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        found = _resolve(module, ast.unparse(target))
        if isinstance(found, type) and issubclass(found, BaseException):
            yield Raised(module.__name__, node.lineno, found)


def _resolve(module: ModuleType, dotted: str) -> object:
    head, *rest = dotted.split(".")
    found: object = vars(module).get(head, getattr(builtins, head, None))
    for part in rest:
        found = getattr(found, part, None)
    return found


def defined_classes(module: ModuleType) -> Iterator[type[BaseException]]:
    for value in vars(module).values():
        if (inspect.isclass(value) and issubclass(value, BaseException)
                and value.__module__ == module.__name__):
            yield value


def allowed(module: str, cls: type[BaseException]) -> bool:
    if issubclass(cls, InvariantError):
        return True
    return any(module.startswith(prefix) and cls.__name__ == name
               for prefix, name in OUTSIDE_THE_TREE)


def private_and_caught(module: ModuleType, cls: type[BaseException]) -> bool:
    source = Path(inspect.getfile(module)).read_text()
    return cls.__name__.startswith("_") and cls.__module__ == module.__name__ and (
        f"except {cls.__name__}" in source or f"except ({cls.__name__}" in source)


def test_every_exception_class_invariant_defines_is_in_the_tree() -> None:
    outside = [f"{module.__name__}.{cls.__qualname__}"
               for module in invariant_modules() for cls in defined_classes(module)
               if not allowed(module.__name__, cls)
               and not private_and_caught(module, cls)]
    assert outside == [], (
        "derive these from InvariantError (invariant.errors), or list them in "
        f"OUTSIDE_THE_TREE with the reason: {outside}")


def test_every_exception_invariant_raises_on_purpose_is_in_the_tree() -> None:
    outside = [f"{r.module}:{r.line} raises {r.cls.__qualname__}"
               for module in invariant_modules() for r in raised_classes(module)
               if not allowed(r.module, r.cls) and not private_and_caught(module, r.cls)]
    assert outside == [], (
        "raise an InvariantError subclass (invariant.errors) instead, or list the class in "
        f"OUTSIDE_THE_TREE with the reason: {outside}")


def test_the_walk_finds_what_it_must_judge() -> None:
    """The two tests above are only as good as the walk: it sees builtins, imported
    library classes and the tree's own classes where they are raised."""
    from invariant.http import limits
    from invariant.messaging.jobs import table

    assert {r.cls.__name__ for r in raised_classes(table)} == {"ConfigurationError"}
    assert "BodyTooLarge" in {r.cls.__name__ for r in raised_classes(limits)}
    assert not allowed("invariant.messaging.jobs.table", LookupError)
    assert not allowed("invariant.http.limits", ValueError)
