"""The optional parts of invariant and the libraries each one needs.

``pip install invariant`` brings the core: the domain kit, the event store with its SQLite
and in-memory adapters, the application layer, projections, the outbox relay and processes
on SQLite. Every other adapter is an *extra* (``pip install 'invariant[nats]'``): its module
imports its client library inside :func:`needs_extra`, so that a missing library is reported
as the extra to install rather than as a bare ``ModuleNotFoundError``.

Standard library only: it is imported before any optional library is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from invariant.domain.errors import ConfigurationError

EXTRAS: dict[str, tuple[str, ...]] = {
    "postgres": ("asyncpg",),
    "nats": ("nats",),
    "rabbitmq": ("aio_pika", "aiormq", "pamqp"),
    "redis": ("redis",),
    "kafka": ("aiokafka",),
    "http": ("fastapi", "starlette", "httpx2"),
    "resilience": ("stamina", "purgatory"),
    "cli": ("typer", "rich", "click"),
    "console": ("jinja2", "fastapi", "starlette"),
    "otel": ("opentelemetry", "prometheus_client"),
    "otlp": ("opentelemetry",),
}
"""Each extra of the ``invariant`` distribution and the top-level modules it installs
(the names ``pyproject.toml``'s ``[project.optional-dependencies]`` lists, less ``dev``,
``docs``, ``bench`` and ``all``)."""


class MissingExtraError(ConfigurationError, ImportError):
    """A part of invariant was imported without the extra that installs its library.

    An :class:`ImportError` too, so that code probing for an optional adapter with
    ``except ImportError`` keeps working."""

    def __init__(self, extra: str, module: str) -> None:
        self.extra = extra
        self.module = module
        super().__init__(
            f"this part of invariant needs {module!r}, which the {extra!r} extra installs: "
            f"pip install 'invariant[{extra}]'")


@contextmanager
def needs_extra(extra: str) -> Iterator[None]:
    """Import an extra's libraries inside this block: a library of ``extra`` that is not
    installed raises :class:`MissingExtraError` naming the extra; any other failed import
    (a bug, a broken installation of something else) passes through unchanged."""
    try:
        libraries = EXTRAS[extra]
    except KeyError:
        raise ConfigurationError(
            f"no extra named {extra!r}; the extras are {', '.join(sorted(EXTRAS))}") from None
    try:
        yield
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in libraries:
            raise
        raise MissingExtraError(extra, missing) from exc
