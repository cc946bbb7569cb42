"""Where shop's time goes in a W6 run: py-spy's raw stacks (``python -m benchmarks.w6
--profile PATH``) attributed to the parts of shop and of invariant.

``python -m benchmarks.w6_profile PROFILE.txt`` prints two tables of the event loop's
thread (where shop runs everything: HTTP, the workers, every SQLite transaction):

* by **part**: the innermost frame that belongs to a part names it (a SQLAlchemy or
  driver frame is charged to the part that issued the statement); two parts are not code
  but waits: ``durable commits`` (the sample is in a commit: on SQLite with
  ``synchronous=FULL`` mostly the fsync, which blocks the loop) and ``idle`` (the loop waits
  in ``select`` for a socket or a timer: polling intervals, network);
* by **worker**: the asyncio task (or callback) the sample runs in: HTTP requests, each
  consumer, the process runner, the projections, the relay, the job worker, the event
  store's batched commit, the in-process SMTP sink.

A first table says what the loop's thread was doing (waiting for a commit, idle, SQLite
executing a statement, SQLAlchemy's own Python, anything else). Samples are taken with
``--idle``, so shares are of wall-clock time; the column ``of which SQLAlchemy`` is the
part of each share spent in SQLAlchemy's own Python (building, compiling and binding
statements, reading results; SQLite's execution of them is not in it).
"""

from __future__ import annotations

import argparse
import linecache
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

LOOP_THREAD = "MainThread"
IDLE, COMMIT, LOOP = "idle (loop waiting)", "durable commits (fsync)", "event loop itself"
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # (part, path fragments of its code); the innermost frame matching one names the part
    ("the store", ("invariant/store/",)),
    ("broker", ("invariant/messaging/sql_broker.py", "invariant/messaging/nats.py",
                "invariant/messaging/brokers", "nats/")),
    ("relay", ("invariant/messaging/relay",)),
    ("consumers and inboxes", ("invariant/messaging/consumer", "invariant/messaging/inbox",
                               "invariant/messaging/deadletters")),
    ("jobs", ("invariant/messaging/jobs", "invariant/messaging/job_queue")),
    ("process manager", ("invariant/processes/",)),
    ("projections", ("invariant/projections/runner", "invariant/projections/projection",
                     "invariant/projections/checkpoints", "invariant/projections/cache",
                     "invariant/projections/consistency", "invariant/projections/status")),
    ("SMTP (client and in-process sink)", ("aiosmtplib/", "aiosmtpd/", "email/",
                                           "shop/notifications/infrastructure.py")),
    ("handlers", ("invariant/application/", "invariant/domain/", "invariant/state/",
                  "invariant/contracts/", "shop/kernel/", "/application.py", "/domain.py",
                  "/infrastructure.py", "/published.py", "invariant/messaging/published")),
    ("HTTP and validation", ("uvicorn/", "starlette/", "fastapi/", "pydantic/",
                             "pydantic_core/", "h11/", "httptools/", "anyio/", "jwt/",
                             "/api.py", "shop/platform/", "invariant/http/")),
)
WORKERS: tuple[tuple[str, str], ...] = (
    # (the frame right under asyncio's Handle._run starts with, worker)
    ("RequestResponseCycle.", "HTTP requests"),
    ("H11Protocol.", "HTTP requests"), ("HttpToolsProtocol.", "HTTP requests"),
    ("_SelectorSocketTransport._read_ready", "sockets (HTTP, SMTP reads)"),
    ("Consumer.", "consumers"),
    ("ProcessRunner.", "process runner"),
    ("ProjectionRunner.", "projections"), ("ProjectionSet.", "projections"),
    ("OutboxRelay.", "outbox relay"),
    ("JobWorker.", "job worker"),
    ("_LoopWriter.", "event store batched commit"),
    ("SMTP.", "SMTP sink (in-process)"),
)


@dataclass(frozen=True, slots=True)
class Sample:
    """One stack py-spy recorded (root first) and how many times."""

    thread: str
    frames: tuple[str, ...]
    count: int


def read(path: Path) -> Iterator[Sample]:
    """The samples of a ``py-spy record --format raw --threads`` file."""
    with path.open() as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            thread, *frames = stack.split(";")
            yield Sample(thread, tuple(frames), int(count))


def _where(frame: str) -> tuple[str, str, int]:
    """``Class.method (pkg/mod.py:123)`` → (function, path, line)."""
    function, _, rest = frame.partition(" (")
    path, _, line = rest.rstrip(")").rpartition(":")
    return function, path, int(line) if line.isdigit() else 0


@cache
def _source(path: str, line: int) -> str:
    for base in sys.path:
        candidate = Path(base) / path
        if candidate.is_file():
            return linecache.getline(str(candidate), line)
    return ""


def _is_commit(frame: str) -> bool:
    function, path, line = _where(frame)
    if function.endswith("do_commit"):
        return True
    text = _source(path, line)
    return "COMMIT" in text or ".commit()" in text


def part_of(sample: Sample) -> str:
    """The part a sample of the loop's thread is charged to."""
    leaf = sample.frames[-1] if sample.frames else ""
    if _where(leaf)[0].endswith(".select") and _where(leaf)[1] == "selectors.py":
        return IDLE
    if _is_commit(leaf):
        return COMMIT
    for frame in reversed(sample.frames):
        path = _where(frame)[1]
        for part, fragments in PARTS:
            if any(fragment in path for fragment in fragments):
                return part
    return LOOP


def worker_of(sample: Sample) -> str:
    """The asyncio task or callback a sample runs in."""
    frames = sample.frames
    for i, frame in enumerate(frames):
        if frame.startswith("Handle._run (asyncio/events.py") and i + 1 < len(frames):
            below = frames[i + 1]
            for prefix, worker in WORKERS:
                if below.startswith(prefix):
                    return worker
            return "other callbacks"
    return IDLE if part_of(sample) == IDLE else LOOP


def in_sqlalchemy(sample: Sample) -> bool:
    return any("sqlalchemy/" in _where(f)[1] for f in sample.frames)


EXECUTING = "SQLite executing statements"
ALCHEMY = "SQLAlchemy (building, compiling, binding, reading results)"
OTHER = "everything else (shop, invariant, FastAPI, asyncio, drivers)"


def activity_of(sample: Sample, part: str) -> str:
    """What the loop's thread was doing: waiting (for a commit, or idle), SQLite executing
    a statement (the leaf is the driver call), SQLAlchemy's own Python, or anything else."""
    if part in (COMMIT, IDLE):
        return part
    function, path, line = _where(sample.frames[-1]) if sample.frames else ("", "", 0)
    if function.endswith(("do_execute", "do_executemany")) or (
            path.endswith("invariant/sql/direct.py") and "cursor." in _source(path, line)):
        return EXECUTING  # SQLAlchemy's driver call, or invariant.sql.direct's
    return ALCHEMY if in_sqlalchemy(sample) else OTHER


Column = tuple[Counter[str], int]
"""A column of a table: counts per key, and the total they are shares of."""


def table(title: str, counts: Counter[str], columns: dict[str, Column], total: int) -> str:
    """A Markdown table: each key's share of ``total`` samples, then each column's share."""
    heads = "".join(f" {c} |" for c in columns)
    lines = [f"| {title} | share of the loop's time |{heads}",
             "|---|---:|" + "---:|" * len(columns)]
    for key, n in counts.most_common():
        cells = "".join(f" {_share(c[key], of)} |" for c, of in columns.values())
        lines.append(f"| {key} | {_share(n, total)} |{cells}")
    return "\n".join(lines)


def _share(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}%" if n and total else "-"


def summarize(samples: Iterable[Sample]) -> str:
    """Both tables for the loop's thread of one profile."""
    parts: Counter[str] = Counter()
    workers: Counter[str] = Counter()
    parts_sa: Counter[str] = Counter()
    workers_sa: Counter[str] = Counter()
    workers_commit: Counter[str] = Counter()
    activities: Counter[str] = Counter()
    total = 0
    for s in samples:
        if LOOP_THREAD not in s.thread:
            continue
        part, worker = part_of(s), worker_of(s)
        total += s.count
        parts[part] += s.count
        workers[worker] += s.count
        activity = activity_of(s, part)
        activities[activity] += s.count
        if part == COMMIT:
            workers_commit[worker] += s.count
        if activity == ALCHEMY:
            parts_sa[part] += s.count
            workers_sa[worker] += s.count
    if not total:
        raise SystemExit("no samples of the event loop's thread in this profile")
    cpu_parts = Counter({k: n for k, n in parts.items() if k not in (COMMIT, IDLE)})
    busy = sum(cpu_parts.values())
    return "\n\n".join([
        f"{total} samples of the event loop's thread",
        table("activity", activities, {}, total),
        table("part", parts, {"share of the CPU (waits set aside)": (cpu_parts, busy),
                              "of which SQLAlchemy": (parts_sa, total)}, total),
        table("worker", workers, {"of which durable commits": (workers_commit, total),
                                  "of which SQLAlchemy": (workers_sa, total)}, total),
    ])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.w6_profile", description=__doc__)
    p.add_argument("profile", type=Path, help="a raw py-spy profile written by W6 --profile")
    args = p.parse_args(argv)
    print(summarize(read(args.profile)))


if __name__ == "__main__":
    main()
