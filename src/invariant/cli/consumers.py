"""``invariant consumers``: run idempotent consumers as a worker process, on the broker the
settings name (``INVARIANT_BROKER``, ``INVARIANT_BROKER_URL``, ``INVARIANT_BROKER_CHANNEL``).
Their database is the store's; ``--consumers package.module:factory`` builds them (a
function taking the database, as for ``invariant deadletters replay``)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

import typer

from invariant.bootstrap import open_broker, open_read_models
from invariant.cli.deadletters import load_consumers
from invariant.cli.running import guarded, stop_event
from invariant.config import Settings
from invariant.domain.errors import ConfigurationError

app = typer.Typer(help="Run consumers on the configured broker.", no_args_is_help=True)


@app.command()
def run(
    consumers: Annotated[str, typer.Option(help="package.module:factory of the consumers")],
    only: Annotated[list[str] | None, typer.Option(
        "--only", help="run only this consumer (repeatable)")] = None,
    batch: Annotated[int, typer.Option(help="messages per fetch")] = 100,
    seconds: Annotated[float | None, typer.Option(help="stop after this long")] = None,
) -> None:
    """Consume until SIGINT/SIGTERM (or ``--seconds``); how many messages each handled."""
    async def main() -> dict[str, int]:
        settings = Settings.from_env()
        if settings.broker in (None, "inprocess"):
            raise ConfigurationError(
                "a consumer process needs a broker outside the application: set "
                "INVARIANT_BROKER to sql (the database's own), nats, rabbitmq, redis or kafka "
                "(with INVARIANT_BROKER_URL); in-process consumers run inside the application")
        database = open_read_models(settings)
        broker = open_broker(settings, database)
        try:
            found = load_consumers(consumers, database)
            unknown = sorted(set(only or ()) - set(found))
            if unknown:
                raise ConfigurationError(
                    f"--only {', '.join(unknown)}: {consumers} builds "
                    f"{', '.join(sorted(found)) or 'no consumer'}")
            chosen = [c for name, c in sorted(found.items()) if not only or name in only]
            for consumer in chosen:
                await consumer.setup()
            await broker.connect()
            stop = stop_event(seconds)
            counts = await asyncio.gather(*(c.consume(broker, stop=stop, batch=batch)
                                            for c in chosen))
            return {c.name: n for c, n in zip(chosen, counts, strict=True)}
        finally:
            with contextlib.suppress(Exception):
                await broker.close()
            await database.close()

    handled = guarded(main)
    for name, count in handled.items():
        typer.echo(f"{name}: handled {count} message(s)")
