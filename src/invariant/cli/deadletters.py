"""``invariant deadletters``: list and replay messages consumers parked.

The dead letters live in the application's database; ``replay`` hands each one to its
consumer, which the application (``--app`` or ``INVARIANT_APP``) gives.
"""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import Connection

from invariant.cli.output import print_table
from invariant.cli.progress import progress
from invariant.cli.target import Session, in_session
from invariant.domain.errors import ConfigurationError
from invariant.messaging import deadletters
from invariant.messaging.consumer import Consumer
from invariant.messaging.deadletters import DeadLetter
from invariant.operations.deadletters import parked, replay_letter

app = typer.Typer(help="List and replay parked (dead-letter) messages.", no_args_is_help=True)
SHOWN_FAILURES = 20
"""How many failed replays are named one by one (the rest are counted)."""
ConsumerOption = Annotated[str | None, typer.Option(help="only this consumer's letters")]


async def _consumers(session: Session) -> dict[str, Consumer]:
    parts = await session.parts("the consumers that replay dead letters")
    return {c.name: c for c in parts.consumers}


def _check_consumer(name: str | None, known: dict[str, Consumer], session: Session) -> None:
    if name is not None and name not in known:
        raise ConfigurationError(
            f"no consumer {name!r} in {session.target.named}; known: "
            f"{', '.join(sorted(known)) or 'none'}")


@app.command("list")
def list_(ctx: typer.Context, consumer: ConsumerOption = None) -> None:
    """Parked messages, oldest first, with the error that parked them."""
    async def work(session: Session) -> list[DeadLetter]:
        if consumer is not None and session.target.app is not None:
            _check_consumer(consumer, await _consumers(session), session)
        await session.database.run(deadletters.create)
        return await session.database.run(
            lambda conn: deadletters.list_parked(conn, consumer), write=False)

    letters = in_session(ctx, work)
    print_table(("id", "consumer", "type", "message id", "attempts", "parked at", "error"),
                [[str(d.id), d.consumer, f"{d.message.message_type} "
                  f"v{d.message.schema_version}", d.message.message_id, str(d.attempts),
                  d.parked_at.isoformat(), d.error] for d in letters], keys=2)
    typer.echo(f"{len(letters)} parked message(s)", err=True)


@app.command()
def replay(
    ctx: typer.Context,
    letter_ids: Annotated[list[int] | None, typer.Argument(
        help="the dead letters' ids (see list)", show_default=False)] = None,
    every: Annotated[bool, typer.Option("--all", help="every parked message")] = False,
    consumer: ConsumerOption = None,
) -> None:
    """Handle parked messages again, each in its consumer; a message leaves the store when
    its handler succeeds and stays parked when it fails again (then this exits 1)."""
    if bool(letter_ids) == every:
        raise ConfigurationError("name the dead letters to replay (ids from `invariant "
                                 "deadletters list`) or pass --all, not both")

    async def work(session: Session) -> list[str]:
        found = await _consumers(session)
        _check_consumer(consumer, found, session)
        await session.database.run(deadletters.create)
        letters = await _chosen(session, letter_ids or [], consumer)
        for letter in letters:
            if letter.consumer not in found:
                raise ConfigurationError(
                    f"dead letter {letter.id} belongs to consumer {letter.consumer!r}, which "
                    f"{session.target.named} does not have; it has "
                    f"{', '.join(sorted(found)) or 'none'}")
        for name in sorted({letter.consumer for letter in letters}):
            await found[name].setup()
        failures: list[str] = []
        with progress("replaying dead letters", "messages") as report:
            for done, letter in enumerate(letters, 1):
                failure = await replay_letter(found[letter.consumer], letter)
                if failure is not None:
                    failures.append(failure)
                report(done, len(letters))
        return [f"replayed {len(letters) - len(failures)} of {len(letters)} dead letter(s)",
                *failures]

    summary, *failures = in_session(ctx, work)
    for line in failures[:SHOWN_FAILURES]:
        typer.echo(line, err=True)
    if len(failures) > SHOWN_FAILURES:
        typer.echo(f"... and {len(failures) - SHOWN_FAILURES} more: see `invariant "
                   "deadletters list`", err=True)
    typer.echo(summary)
    if failures:
        raise typer.Exit(1)


async def _chosen(session: Session, ids: list[int], consumer: str | None
                  ) -> list[DeadLetter]:
    """The letters ``ids`` names (every one, when empty), of ``consumer`` if given."""
    if not ids:
        return await session.database.run(
            lambda conn: deadletters.list_parked(conn, consumer), write=False)
    def read(conn: Connection) -> list[DeadLetter]:
        letters = [parked(conn, letter_id) for letter_id in ids]
        return [letter for letter in letters if consumer in (None, letter.consumer)]

    return await session.database.run(read, write=False)

