"""A read model whose every row says how often an event was applied (crash and lease tests)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence

from sqlalchemy import BigInteger, Column, Connection, Integer, MetaData, String, Table, select

from examples.bank.projections import account_of, minor
from invariant.projections import Projection
from invariant.store import EventEnvelope


class Ledger(Projection):
    """Per event: how many times it was applied and by which process; per account: balance.

    Works page by page (``apply_batch``): one query for the page's existing rows, then the
    writes, as a fast projection would.
    """

    name = "ledger"
    event_types = ("AccountOpened", "MoneyDeposited", "MoneyWithdrawn")

    def __init__(self, version: int | None = None, *, delay: float = 0.0,
                 report: bool = False) -> None:
        super().__init__(version)
        self.delay = delay
        self.report = report

    def define(self, metadata: MetaData) -> None:
        self.applied = Table(
            self.table_name("applied"), metadata,
            Column("position", BigInteger, primary_key=True, autoincrement=False),
            Column("times", Integer, nullable=False),
            Column("worker", Integer, nullable=False),
        )
        self.balances = Table(
            self.table_name("balances"), metadata,
            Column("account_id", String(64), primary_key=True),
            Column("balance", BigInteger, nullable=False),
        )

    def apply_batch(self, envelopes: Sequence[EventEnvelope], conn: Connection) -> None:
        positions = [e.position for e in envelopes]
        seen = {r.position: r.times for r in conn.execute(
            select(self.applied).where(self.applied.c.position.in_(positions)))}
        for e in envelopes:
            if e.position in seen:  # a second application: make it visible, not an error
                conn.execute(self.applied.update().where(self.applied.c.position == e.position)
                             .values(times=self.applied.c.times + 1))
            else:
                conn.execute(self.applied.insert().values(position=e.position, times=1,
                                                          worker=os.getpid()))
            self._move(conn, e)
            if self.delay:
                time.sleep(self.delay)
        if self.report:
            print(f"page {positions[-1]}", flush=True)
            sys.stdout.flush()

    def _move(self, conn: Connection, e: EventEnvelope) -> None:
        t, account = self.balances, account_of(e)
        amount = getattr(e.event, "amount", None) or e.event.initial_deposit  # type: ignore[attr-defined]
        delta = -minor(amount) if e.event_type == "MoneyWithdrawn" else minor(amount)
        if conn.execute(select(t.c.balance).where(t.c.account_id == account)).first() is None:
            conn.execute(t.insert().values(account_id=account, balance=delta))
        else:
            conn.execute(t.update().where(t.c.account_id == account)
                         .values(balance=t.c.balance + delta))
