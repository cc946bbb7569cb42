"""W6 (shop end to end, benchmarks.w6) at a tiny size, and the parts that judge its runs.

No timing assertions: that a run produces every record and passes its own correctness
check; that the check catches what it must; that the profile and statement counts are
attributed to the right parts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.report import W6_METRICS, w6_name
from benchmarks.w6_facts import (
    CHARGED,
    PLACED,
    RESERVED,
    SHIPMENT,
    SHIPPED,
    Relayed,
    StoredEvent,
)
from benchmarks.w6_load import Intake, Placed
from benchmarks.w6_outcome import IncorrectOutcome, check, figures, hops
from benchmarks.w6_profile import (
    ALCHEMY,
    COMMIT,
    EXECUTING,
    IDLE,
    Sample,
    activity_of,
    part_of,
    worker_of,
)
from benchmarks.w6_trace import statement_kind

ROOT = Path(__file__).resolve().parents[2]


def test_a_tiny_w6_run_writes_every_record_and_passes_its_check(tmp_path: Path) -> None:
    out = tmp_path / "w6.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.w6", "--customers", "2", "--intake", "2",
         "--ceiling", "1", "--drain-timeout", "120", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=280, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = json.loads(out.read_text())
    got = {(r["workload"], r["backend"], r["system"]): r for r in records}
    for metric in W6_METRICS:
        record = got[(w6_name(2, metric), "sqlite", "invariant")]
        assert isinstance(record["value"], int | float)
        assert record["value"] >= 0, record
    assert got[(w6_name(2, "placed"), "sqlite", "invariant")]["value"] > 0
    ceiling = got[(w6_name(2, "http"), "sqlite", "raw")]
    assert ceiling["unit"] == "requests/s"
    assert ceiling["value"] > 0
    assert len(records) == len(W6_METRICS) + 1
    assert "W6 sqlite 2 customers" in proc.stdout


# -- the correctness check -------------------------------------------------------------------

ORDERS = ("a" * 32, "b" * 32)


def _intake() -> Intake:
    return Intake(tuple(Placed(o, i, 100.0 + i, 101.0 + i) for i, o in enumerate(ORDERS)),
                  began=100.0, ended=103.0, requests=6)


def _events(*extra: StoredEvent) -> list[StoredEvent]:
    events = [StoredEvent(o, t, 102.0 + 2 * i)
              for i, o in enumerate(ORDERS) for t in (PLACED, CHARGED, SHIPMENT, SHIPPED)]
    return [*events, *extra]


def _mails() -> dict[str, dict[str, list[float]]]:
    return {o: {"order_placed": [102.5 + i], "order_shipped": [103.5 + i]}
            for i, o in enumerate(ORDERS)}


def test_the_check_passes_an_outcome_where_everything_happened_once() -> None:
    check(_intake(), _events(), _mails(), charges=2, refunds=0)
    result = figures(_intake(), _events(), _mails())
    assert result.orders == 2
    assert result.backlog == 1  # b was shipped at 104.0, after intake ended at 103.0
    assert result.drain_s == pytest.approx(1.5)  # b's "shipped" email came at 104.5
    assert result.shipped_p50_ms == pytest.approx(1500.0)  # a after 1 s, b after 2 s
    assert result.placed_per_s == pytest.approx(2 / 3)


@pytest.mark.parametrize(("events", "mails", "charges", "named"), [
    (_events(StoredEvent(ORDERS[0], SHIPPED, 105.0)), _mails(), 2, "2 x ordering.OrderShipped"),
    (_events(StoredEvent(ORDERS[1], CHARGED, 105.0)), _mails(), 2,
     "2 x payments.PaymentCharged"),
    ([e for e in _events() if not (e.order_id == ORDERS[1] and e.event_type == SHIPPED)],
     _mails(), 2, "0 x ordering.OrderShipped"),
    (_events(), {ORDERS[0]: _mails()[ORDERS[0]],
                 ORDERS[1]: {"order_placed": [1.0]}}, 2, "0 order_shipped emails"),
    (_events(), {**_mails(), ORDERS[0]: {"order_placed": [1.0, 2.0],
                                         "order_shipped": [3.0]}}, 2, "2 order_placed emails"),
    (_events(StoredEvent("c" * 32, PLACED, 105.0)), _mails(), 2,
     "placed in the store, never by the load script"),
    (_events(), _mails(), 3, "3 charges"),
])
def test_the_check_names_what_was_lost_doubled_or_missing(
        events: list[StoredEvent], mails: dict[str, dict[str, list[float]]], charges: int,
        named: str) -> None:
    with pytest.raises(IncorrectOutcome, match=named):
        check(_intake(), events, mails, charges=charges, refunds=0)


def test_hops_split_the_way_to_shipped_and_to_each_email() -> None:
    steps = [StoredEvent(ORDERS[0], t, at) for t, at in
             ((PLACED, 10.0), (RESERVED, 11.0), (CHARGED, 13.0), (SHIPMENT, 16.0),
              (SHIPPED, 20.0))]
    relayed = [Relayed(ORDERS[0], "order.placed", published=10.5, handled=12.0)]
    mails = {ORDERS[0]: {"order_placed": [15.0], "order_shipped": [21.0]}}
    assert hops(steps, relayed, mails) == {
        "placed → reserved": 1.0, "reserved → charged": 2.0, "charged → shipment": 3.0,
        "shipment → shipped": 4.0, "order_placed: relay": 0.5,
        "order_placed: consumer": 1.5, "order_placed: job + SMTP": 3.0}


# -- attribution ------------------------------------------------------------------------------

LOOP = ("_run_module_as_main (<frozen runpy>:198)",
        "BaseEventLoop._run_once (asyncio/base_events.py:1922)",
        "Handle._run (asyncio/events.py:80)")


def _sample(*frames: str) -> Sample:
    return Sample("thread (1): MainThread", (*LOOP, *frames), 1)


def test_profile_samples_are_charged_to_the_part_and_worker_they_ran_in() -> None:
    relay_commit = _sample("OutboxRelay.run (invariant/messaging/relay.py:126)",
                           "SQLiteReadModels._run_write (invariant/projections/database.py:157)",
                           "DefaultDialect.do_commit (sqlalchemy/engine/default.py:700)")
    inbox_sql = _sample("Consumer.consume (invariant/messaging/consumer.py:200)",
                        "Consumer.handle (invariant/messaging/consumer.py:150)",
                        "SQLiteReadModels._run_write (invariant/projections/database.py:157)",
                        "Connection.execute (sqlalchemy/engine/base.py:1400)")
    request = _sample("RequestResponseCycle.run_asgi (uvicorn/protocols/http/h11_impl.py:400)",
                      "CommandBus.dispatch (invariant/application/bus.py:90)",
                      "SQLiteStorage.commit (invariant/store/sqlite.py:700)")
    idle = Sample("thread (1): MainThread", (*LOOP[:2], "EpollSelector.select (selectors.py:468)"),
                  1)
    assert (part_of(relay_commit), worker_of(relay_commit)) == (COMMIT, "outbox relay")
    assert (part_of(inbox_sql), worker_of(inbox_sql)) == ("consumers and inboxes", "consumers")
    assert (part_of(request), worker_of(request)) == ("the store", "HTTP requests")
    assert (part_of(idle), worker_of(idle)) == (IDLE, IDLE)
    executing = _sample("Consumer.consume (invariant/messaging/consumer.py:200)",
                        "Connection.execute (sqlalchemy/engine/base.py:1400)",
                        "DefaultDialect.do_execute (sqlalchemy/engine/default.py:940)")
    assert activity_of(inbox_sql, part_of(inbox_sql)) == ALCHEMY
    assert activity_of(executing, part_of(executing)) == EXECUTING
    assert activity_of(relay_commit, COMMIT) == COMMIT


@pytest.mark.parametrize(("sql", "kind"), [
    ("BEGIN IMMEDIATE", "BEGIN"),
    ("COMMIT", "COMMIT"),
    ("INSERT INTO invariant_inbox (consumer, message_id) VALUES (?, ?)",
     "INSERT invariant_inbox"),
    ("INSERT OR IGNORE INTO invariant_outbox_claims VALUES (?)", "INSERT invariant_outbox_claims"),
    ('UPDATE "invariant_jobs" SET state = ?', "UPDATE invariant_jobs"),
    ("DELETE FROM invariant_broker_deliveries WHERE grp = ?",
     "DELETE invariant_broker_deliveries"),
    ("SELECT a.x FROM invariant_events AS a WHERE a.position > ?", "SELECT invariant_events"),
    ("-- TRIGGER invariant_events_to_outbox", "TRIGGER invariant_events_to_outbox"),
])
def test_statements_are_counted_by_kind_and_table(sql: str, kind: str) -> None:
    assert statement_kind(sql) == kind


def test_shop_sees_only_the_settings_w6_passes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks.w6_shop import clean_environment

    monkeypatch.setenv("SHOP_BACKLOG_LIMIT", "7")  # the caller's own: never the measured shop's
    monkeypatch.setenv("INVARIANT_STORE", "postgres")
    monkeypatch.setenv("W6_SHOP_MAX_IN_FLIGHT", "4")  # asked for, for the measured shop
    env = clean_environment()
    assert env["SHOP_MAX_IN_FLIGHT"] == "4"
    assert "SHOP_BACKLOG_LIMIT" not in env and "INVARIANT_STORE" not in env
    assert not any(k.startswith("W6_") for k in env)
