"""``invariant consumers``: run the application's idempotent consumers as a worker process,
on the broker its settings name (``INVARIANT_BROKER``, ``INVARIANT_BROKER_URL``,
``INVARIANT_BROKER_CHANNEL``; shop's default is ``sql``, in its own database)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

import typer

from invariant.bootstrap import open_broker
from invariant.cli.running import stop_event
from invariant.cli.target import Session, in_session
from invariant.domain.errors import ConfigurationError

app = typer.Typer(help="Run the application's consumers on its broker.", no_args_is_help=True)


@app.command()
def run(
    ctx: typer.Context,
    only: Annotated[list[str] | None, typer.Option(
        "--only", help="run only this consumer (repeatable)")] = None,
    batch: Annotated[int, typer.Option(help="messages per fetch")] = 100,
    seconds: Annotated[float | None, typer.Option(help="stop after this long")] = None,
) -> None:
    """Consume until SIGINT/SIGTERM (or ``--seconds``); how many messages each handled."""
    async def main(session: Session) -> dict[str, int]:
        settings = session.target.settings
        if settings.broker in (None, "inprocess"):
            raise ConfigurationError(
                "a consumer process needs a broker outside the application: set "
                "INVARIANT_BROKER to sql (the database's own), nats, rabbitmq, redis or kafka "
                "(with INVARIANT_BROKER_URL); in-process consumers run inside the application")
        found = {c.name: c for c in (await session.parts("the consumers")).consumers}
        unknown = sorted(set(only or ()) - set(found))
        if unknown:
            raise ConfigurationError(
                f"--only {', '.join(unknown)}: no such consumer in {session.target.named}; "
                f"known: {', '.join(sorted(found)) or 'none'}")
        chosen = [c for name, c in sorted(found.items()) if not only or name in only]
        broker = open_broker(settings, session.database)
        try:
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

    handled = in_session(ctx, main)
    for name, count in handled.items():
        typer.echo(f"{name}: handled {count} message(s)")
