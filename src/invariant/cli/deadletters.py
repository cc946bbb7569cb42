"""``invariant deadletters``: list and replay messages consumers parked.

The database is the store's (``INVARIANT_*`` settings, see :mod:`invariant.config`).
``replay`` needs the consumers: ``--consumers package.module:factory``, a function taking
the database and returning the :class:`~invariant.messaging.consumer.Consumer` objects.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from invariant.bootstrap import open_read_models
from invariant.cli.running import guarded, import_attribute
from invariant.config import Settings
from invariant.domain.errors import ConfigurationError
from invariant.messaging import deadletters
from invariant.messaging.consumer import Consumer
from invariant.sql.database import ReadModelDatabase

T = TypeVar("T")
app = typer.Typer(help="List and replay parked (dead-letter) messages.", no_args_is_help=True)


def _with_database(work: Callable[[ReadModelDatabase], Awaitable[T]]) -> T:
    async def main() -> T:
        database = open_read_models(Settings.from_env())
        try:
            await database.run(deadletters.create)
            return await work(database)
        finally:
            await database.close()

    return guarded(main)


def load_consumers(spec: str, database: ReadModelDatabase) -> dict[str, Consumer]:
    """The consumers ``package.module:factory`` builds for ``database``, by name."""
    factory = import_attribute(spec, "--consumers", "factory")
    return {c.name: c for c in factory(database)}


@app.command("list")
def list_(consumer: Annotated[str | None, typer.Option(help="only this consumer")] = None
          ) -> None:
    """Parked messages, oldest first, with the error that parked them."""
    letters = _with_database(
        lambda db: db.run(lambda conn: deadletters.list_parked(conn, consumer), write=False))
    table = Table("id", "consumer", "type", "message id", "attempts", "parked at", "error")
    for d in letters:
        table.add_row(str(d.id), d.consumer, f"{d.message.message_type} "
                      f"v{d.message.schema_version}", d.message.message_id, str(d.attempts),
                      d.parked_at.isoformat(), d.error)
    Console(width=200).print(table)
    typer.echo(f"{len(letters)} parked message(s)")


@app.command()
def replay(
    letter_id: Annotated[int, typer.Argument(help="the dead letter's id (see list)")],
    consumers: Annotated[str, typer.Option(help="package.module:factory of the consumers")],
) -> None:
    """Handle a parked message again; it leaves the store when its handler succeeds."""
    async def work(database: ReadModelDatabase) -> str:
        letter = await database.run(lambda conn: deadletters.get(conn, letter_id),
                                    write=False)
        if letter is None:
            raise ConfigurationError(f"no dead letter {letter_id}: see `invariant "
                                     "deadletters list`")
        found = load_consumers(consumers, database)
        if letter.consumer not in found:
            raise ConfigurationError(f"dead letter {letter_id} belongs to consumer "
                                     f"{letter.consumer!r}, which {consumers} does not build")
        await found[letter.consumer].replay(letter_id)
        return letter.consumer

    try:
        name = _with_database(work)
    except typer.Exit:
        raise
    except Exception as exc:
        typer.echo(f"replay failed, the message stays parked: {type(exc).__name__}: {exc}",
                   err=True)
        raise typer.Exit(1) from None
    typer.echo(f"dead letter {letter_id} replayed by {name}")
