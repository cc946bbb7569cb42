"""Counting shop's SQLite statements per order, by the worker that ran them (W6's
``--trace-sql``).

``python -m benchmarks.w6_trace --out PATH`` runs shop (as ``python -m shop``) with a
trace callback on every SQLite connection it opens: each statement SQLite runs (a row of an
``executemany`` counts once, a trigger's body is reported as ``-- TRIGGER``) is counted
under (the worker, the connection's owner, the statement's kind and table). The worker is
the asyncio task running it (shop names its relay, consumers, job worker and process runner;
HTTP requests run in uvicorn's ``run_asgi``; the event store's batched commits run in a loop
callback). It also measures the event loop's lag: a task asking to sleep
:data:`LAG_PROBE_S` records how much later it wakes (what every ``await`` of a worker waits
behind the others). Each ``SIGUSR1`` writes the counts and lags so far to ``PATH``; W6
signals before the intake and after the drain, and :class:`SqlTrace` reports the
difference (statements per order, lags in between).

The callback costs CPU: a traced run's figures are not W6's figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sqlite3
import sqlite3.dbapi2
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

_counts: Counter[str] = Counter()
_lags: list[float] = []
LAG_PROBE_S = 0.01
_lock = threading.RLock()  # a SIGUSR1 may arrive while a count holds it
_TABLE = re.compile(r"^\s*(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|UPDATE|DELETE\s+FROM|"
                    r"REPLACE\s+INTO)\s+\"?(\w+)", re.IGNORECASE)
_FROM = re.compile(r"\bFROM\s+\"?(\w+)", re.IGNORECASE)
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "TRIGGER")


def statement_kind(sql: str) -> str:
    """``BEGIN``, ``COMMIT``, ``INSERT invariant_outbox``, ``SELECT invariant_events``, …"""
    text = sql.lstrip()
    if text.startswith("--"):
        return "TRIGGER " + text[2:].split()[-1] if text[2:].split() else "TRIGGER"
    word = text.split(None, 1)[0].upper() if text else "(empty)"
    if word in ("INSERT", "UPDATE", "DELETE", "REPLACE"):
        table = _TABLE.match(text)
        return f"{word} {table[1] if table else '?'}"
    if word in ("SELECT", "WITH"):
        table = _FROM.search(text)
        return f"SELECT {table[1] if table else '(no table)'}"
    return word


def _worker() -> str:
    try:
        task = asyncio.current_task()
    except RuntimeError:
        return f"thread {threading.current_thread().name}"
    if task is None:
        return "loop callback"
    name = task.get_name()
    if not name.startswith("Task-"):
        return name
    coro = task.get_coro()
    return str(getattr(coro, "__qualname__", type(coro).__name__))


def _owner(frame: FrameType | None) -> str:
    """Who opened a connection: the event store's own, or SQLAlchemy's (read models,
    process state, inbox, outbox relay, jobs, broker: everything run through
    ``ReadModelDatabase.run``)."""
    while frame is not None:
        path = frame.f_code.co_filename.replace(os.sep, "/")
        if "/invariant/store/" in path:
            return "event store"
        if "/sqlalchemy/" in path:
            return "SQLAlchemy"
        frame = frame.f_back
    return "other"


def _install() -> None:
    connect = sqlite3.connect

    def traced_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn: sqlite3.Connection = connect(*args, **kwargs)
        owner = _owner(sys._getframe(1))
        wrote = False  # since this connection's BEGIN: a COMMIT that wrote syncs the WAL

        def count(sql: str) -> None:
            nonlocal wrote
            kind = statement_kind(sql)
            if kind == "BEGIN":
                wrote = False
            elif kind.startswith(WRITES):
                wrote = True
            elif kind == "COMMIT":
                kind = "COMMIT (wrote)" if wrote else "COMMIT (read only)"
            key = f"{_worker()}|{owner}|{kind}"
            with _lock:
                _counts[key] += 1

        conn.set_trace_callback(count)
        return conn

    sqlite3.connect = traced_connect  # type: ignore[assignment]
    sqlite3.dbapi2.connect = traced_connect  # type: ignore[assignment]


async def _probe_lag(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        asked = loop.time()
        await asyncio.sleep(LAG_PROBE_S)
        _lags.append(1000 * (loop.time() - asked - LAG_PROBE_S))


def _install_lag_probe() -> None:
    from shop.platform.runtime import Shop

    enter = Shop.__aenter__

    async def entered(self: Shop) -> Shop:
        shop = await enter(self)
        # stopped with shop's own workers
        shop.host.spawn(_probe_lag(shop.host.stopping), "w6 lag probe")
        return shop

    Shop.__aenter__ = entered  # type: ignore[method-assign]


def _dump(out: Path) -> None:
    with _lock:
        data = {"written": time.time(), "counts": dict(_counts), "lags": list(_lags)}
    partial = out.with_suffix(".partial")
    partial.write_text(json.dumps(data))
    partial.replace(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.w6_trace", description=__doc__)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    _install()
    _install_lag_probe()
    signal.signal(signal.SIGUSR1, lambda *_: _dump(args.out))
    sys.argv = ["shop"]
    from shop.cli import main as shop

    shop()


# -- in W6's process ---------------------------------------------------------------------------

WORKER_GROUPS = (
    ("run_asgi", "HTTP requests"),
    ("relay", "outbox relay"),
    ("consumer ", "consumers"),
    ("jobs", "job worker"),
    ("processes", "process runner"),
    ("projection", "projections"),
    ("loop callback", "event store batched commit"),
)


def worker_group(worker: str) -> str:
    """The part of shop a worker (an asyncio task's name or coroutine) belongs to."""
    for prefix, group in WORKER_GROUPS:
        if prefix in worker:
            return group
    return worker


class SqlTrace:
    """Drives a traced shop from W6: :meth:`command` starts it, :meth:`mark` takes the
    counts so far, :meth:`report` writes and prints the statements per order between the
    first and the last mark."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.live = out.with_name(out.stem + ".live.json")
        self.marks: list[Counter[str]] = []
        self.lags: list[list[float]] = []

    def command(self) -> list[str]:
        return [sys.executable, "-m", "benchmarks.w6_trace", "--out", str(self.live)]

    async def mark(self, pid: int) -> None:
        """Ask shop for its counts (SIGUSR1) and keep them."""
        before = self.live.stat().st_mtime_ns if self.live.exists() else 0
        os.kill(pid, signal.SIGUSR1)
        for _ in range(200):
            if self.live.exists() and self.live.stat().st_mtime_ns != before:
                data = json.loads(self.live.read_text())
                self.marks.append(Counter(data["counts"]))
                self.lags.append(data["lags"])
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"the traced shop did not write {self.live} within 10 s")

    def report(self, orders: int) -> dict[str, Any]:
        """Statements per order, by worker group, owner and kind; written to ``out``."""
        diff = self.marks[-1] - self.marks[0]
        per_order: Counter[str] = Counter()
        by_group: Counter[str] = Counter()
        synced: Counter[str] = Counter()
        for key, n in diff.items():
            worker, owner, kind = key.split("|", 2)
            group = worker_group(worker)
            per_order[f"{group}|{owner}|{kind}"] += n
            if kind.startswith("COMMIT"):
                by_group[group] += n
            if kind == "COMMIT (wrote)":
                synced[group] += n
        commits = {g: round(n / orders, 2) for g, n in by_group.most_common()}
        lags = sorted(self.lags[-1][len(self.lags[0]):]) or [0.0]
        lag = {"p50": round(lags[len(lags) // 2], 2),
               "p99": round(lags[min(len(lags) - 1, round(0.99 * (len(lags) - 1)))], 2),
               "max": round(lags[-1], 2)}
        result = {
            "orders": orders,
            "commits_per_order": commits,
            "commits_per_order_total": round(sum(by_group.values()) / orders, 2),
            "writing_commits_per_order": {g: round(n / orders, 2)
                                          for g, n in synced.most_common()},
            "writing_commits_per_order_total": round(sum(synced.values()) / orders, 2),
            "statements_per_order_total": round(sum(diff.values()) / orders, 2),
            "loop_lag_ms": lag,
            "statements_per_order": {k: round(n / orders, 3)
                                     for k, n in per_order.most_common()},
        }
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"SQL per order ({orders} orders): {result['commits_per_order_total']} commits "
              f"({result['writing_commits_per_order_total']} that wrote), "
              f"{result['statements_per_order_total']} statements; commits by part: "
              + ", ".join(f"{g} {v}" for g, v in commits.items())
              + f"; the loop's lag p50 {lag['p50']} ms, p99 {lag['p99']} ms, max {lag['max']} ms"
              + f" (all in {self.out})", flush=True)
        return result


if __name__ == "__main__":
    main()
