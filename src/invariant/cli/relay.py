"""``invariant relay``: the outbox relay as a worker process (the distributed mode), and its
lag. The database is the application's; the broker is its settings'
``INVARIANT_BROKER``/``INVARIANT_BROKER_URL``/``INVARIANT_BROKER_CHANNEL``, or ``--broker``
(a URL) and ``--channel``, which take precedence."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Annotated

import typer

from invariant.bootstrap import open_broker
from invariant.cli.running import stop_event
from invariant.cli.target import Session, in_session
from invariant.domain.errors import ConfigurationError
from invariant.messaging.brokers import broker_from_url
from invariant.messaging.brokers.inprocess import InProcessBroker
from invariant.messaging.relay import IDLE, OutboxRelay, RelayLag

app = typer.Typer(help="Run the outbox relay, or report its lag.", no_args_is_help=True)

BrokerOption = Annotated[str | None, typer.Option(
    "--broker", help="nats://..., amqp://..., redis://... or kafka://host:port "
    "(default: INVARIANT_BROKER and INVARIANT_BROKER_URL)")]


@app.command()
def run(
    ctx: typer.Context,
    broker: BrokerOption = None,
    channel: Annotated[str | None, typer.Option(
        help="stream / exchange / topic name (default: INVARIANT_BROKER_CHANNEL, invariant)")]
    = None,
    batch_size: Annotated[int, typer.Option(help="rows per batch")] = 500,
    lease: Annotated[float, typer.Option(help="seconds a claim lasts")] = 30.0,
    seconds: Annotated[float | None, typer.Option(help="stop after this long")] = None,
    poll: Annotated[float | None, typer.Option(
        help="seconds between looks at an empty outbox (default: 1 on PostgreSQL, which "
        "wakes the relay at every commit by NOTIFY; 0.05 on SQLite, where the commits of "
        "the application's processes wake nothing here)", min=0.001)] = None,
) -> None:
    """Publish outbox rows until SIGINT/SIGTERM (or ``--seconds``)."""
    async def main(session: Session) -> int:
        settings, database = session.target.settings, session.database
        if broker is not None:
            target = broker_from_url(broker, channel=channel or settings.broker_channel)
        elif settings.broker is None:
            raise ConfigurationError(
                "no broker to relay to: set INVARIANT_BROKER (nats, rabbitmq, redis or kafka) "
                "and INVARIANT_BROKER_URL, or pass --broker URL")
        else:
            if channel is not None:
                settings = replace(settings, broker_channel=channel)
            target = open_broker(settings, database)
        if isinstance(target, InProcessBroker):
            raise ConfigurationError(
                "an in-process broker lives inside the application (bootstrap runs its relay); "
                "a relay process needs a server: set INVARIANT_BROKER to nats, rabbitmq, redis "
                "or kafka with INVARIANT_BROKER_URL, or pass --broker URL")
        relay = OutboxRelay(database, target, batch_size=batch_size, lease=lease)
        stop = stop_event(seconds)
        try:
            await target.connect()
            await relay.setup()
            idle = poll if poll is not None else (
                IDLE if database.dialect == "postgresql" else 0.05)
            await relay.run(stop=stop, idle=idle, listen=True)
            return relay.published
        finally:
            with contextlib.suppress(Exception):
                await target.close()

    typer.echo(f"published {in_session(ctx, main)} message(s)")


@app.command()
def lag(ctx: typer.Context) -> None:
    """Unpublished outbox rows and the age of the oldest."""
    async def main(session: Session) -> RelayLag:
        relay = OutboxRelay(session.database, InProcessBroker())
        await relay.setup()
        return await relay.lag()

    found = in_session(ctx, main)
    typer.echo(f"pending {found.pending}, oldest {found.oldest_age_seconds:.1f} s")
