"""W3 for eventsourcing 9.5: its ProjectionRunner catching a balance view up.

The documented shape: an ``Application`` stores ``Account`` aggregates; a ``Projection``
processes each ``Deposited`` event through a view, a tracking recorder subclass that updates
the balance and records the tracking position in one transaction (one per event: that is
how its runner works). Run by :mod:`benchmarks.w3`.
"""

from __future__ import annotations

import os
import time
from functools import singledispatchmethod
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import Projection, ProjectionRunner
from eventsourcing.sqlite import SQLiteTrackingRecorder
from eventsourcing.utils import get_topic
from psycopg.sql import SQL, Identifier

ACCOUNTS = 1000
UPSERT = ("INSERT INTO es_balances VALUES ({0}, {1}) ON CONFLICT (account_id)"
          " DO UPDATE SET balance = es_balances.balance + excluded.balance")


class Account(Aggregate):
    @event("Opened")
    def __init__(self, name: str) -> None:
        self.name = name

    @event("Deposited")
    def deposit(self, amount: int) -> None:
        return None


class Bank(Application[Any]):
    pass


class SQLiteBalances(SQLiteTrackingRecorder):
    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(),
                "CREATE TABLE IF NOT EXISTS es_balances"
                " (account_id TEXT PRIMARY KEY, balance INTEGER NOT NULL)"]

    def deposit(self, account_id: str, amount: int, tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(UPSERT.format("?", "?"), (account_id, amount))
            self._insert_tracking(c, tracking)

    def balances(self) -> dict[str, int]:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT account_id, balance FROM es_balances")
            return {r[0]: r[1] for r in c.fetchall()}


class PostgresBalances(PostgresTrackingRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sql_create_statements.append(SQL(
            "CREATE TABLE IF NOT EXISTS {0}.es_balances"
            " (account_id text PRIMARY KEY, balance bigint NOT NULL)"
        ).format(Identifier(self.datastore.schema)))

    def deposit(self, account_id: str, amount: int, tracking: Tracking) -> None:
        upsert = UPSERT.replace("es_balances", f"{self.datastore.schema}.es_balances")
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(upsert.format("%s", "%s"), (account_id, amount))  # type: ignore[arg-type]
            self._insert_tracking(curs, tracking)

    def balances(self) -> dict[str, int]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(f"SELECT account_id, balance FROM {self.datastore.schema}.es_balances")
            return {r["account_id"]: r["balance"] for r in curs.fetchall()}


class Balances(Projection[Any]):
    name = "balances"
    topics = (get_topic(Account.Deposited),)  # type: ignore[attr-defined]

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.insert_tracking(tracking)

    @process_event.register
    def _(self, domain_event: Account.Deposited, tracking: Tracking) -> None:  # type: ignore[name-defined]
        self.view.deposit(str(domain_event.originator_id), domain_event.amount, tracking)


def run(env: dict[str, str], events: int) -> float:
    """Store ``events`` deposits, then time the runner catching its view up."""
    os.environ.update(env)
    app = Bank(env)
    per_account = max(1, events // ACCOUNTS)
    expected: dict[str, int] = {}
    stored = 0
    while stored < events:
        account = Account(f"acct-{stored}")
        for i in range(min(per_account, events - stored)):
            amount = 1 + (stored + i) % 9
            account.deposit(amount)
            expected[str(account.id)] = expected.get(str(account.id), 0) + amount
        stored += min(per_account, events - stored)
        app.save(account)
    head = app.recorder.max_notification_id()
    view_class = SQLiteBalances if env["PERSISTENCE_MODULE"].endswith("sqlite") else \
        PostgresBalances
    started = time.perf_counter()
    with ProjectionRunner(application_class=Bank, projection_class=Balances,
                          view_class=view_class, env=env) as runner:
        runner.wait(head, timeout=3600)
        elapsed = time.perf_counter() - started
        got = runner.view.balances()  # type: ignore[attr-defined]
    assert got == expected, "eventsourcing's view is wrong"
    return events / elapsed
