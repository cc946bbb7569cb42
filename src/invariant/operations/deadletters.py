"""Operating dead letters: replaying one in its consumer, discarding one."""

from __future__ import annotations

from sqlalchemy import Connection

from invariant.domain.errors import NotFoundError
from invariant.messaging import deadletters
from invariant.messaging.consumer import Consumer
from invariant.messaging.deadletters import DeadLetter


async def replay_letter(consumer: Consumer, letter: DeadLetter) -> str | None:
    """Replay one letter in ``consumer``: None when its handler succeeded (the letter is
    gone), else why it stays parked."""
    try:
        await consumer.replay(letter.id)
    except Exception as exc:  # the handler's failure is the outcome to report, not a crash
        why = " ".join(f"{type(exc).__name__}: {exc}".split())
        return f"dead letter {letter.id} ({letter.consumer}) failed again and stays parked: {why}"
    return None


def parked(conn: Connection, letter_id: int) -> DeadLetter:
    """The parked letter ``letter_id``, or :class:`NotFoundError` saying where to look."""
    letter = deadletters.get(conn, letter_id)
    if letter is None:
        raise NotFoundError(f"no dead letter {letter_id}: see `invariant deadletters list`")
    return letter


def discard(conn: Connection, letter_id: int) -> DeadLetter:
    """Forget a parked letter without handling it (the message is lost to its consumer:
    its handler never sees it); the letter that was discarded."""
    letter = parked(conn, letter_id)
    deadletters.remove(conn, letter_id)
    return letter
