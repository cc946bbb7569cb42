"""Plain-text report (no Rich) and the JSON records file."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

Record = dict[str, Any]
SUBJECT = "invariant"
BASELINES = ("raw", "eventsourcing")
COLUMNS = ("invariant", "invariant-nocache", "raw", "raw-typed", "eventsourcing")
W5_COLUMNS = ("invariant", "raw", "eventsourcing")
W6_CUSTOMERS = (8, 32)
W6_METRICS = (
    "placed", "completed", "shipped-in-intake", "backlog", "drain", "shipped-p50",
    "shipped-p99", "email-placed-p50", "email-placed-p99", "email-shipped-p50",
    "email-shipped-p99", "cpu", "cpu-per-order", "http",
)
"""W6's records per number of customers, in the order the table shows them."""


def w6_name(customers: int, metric: str) -> str:
    """A W6 record's workload name, e.g. ``W6-32c-placed``."""
    return f"W6-{customers}c-{metric}"


WORKLOAD_ORDER = (
    "W1", "W1-p50", "W1-p99", "W1-rss",
    "W1c", "W1c-p50", "W1c-p99", "W1c-retries", "W1c-rss",
    "W2", "W2-snapshot", "W2-rss",
    "W5-events", "W5-rounds", "W5-runs", "W5-fill", "W5-fill-s", "W5-bytes", "W5-bytes-events",
    "W5-W1-empty", "W5-W1-full", "W5-W1-ratio", "W5-W1c-empty", "W5-W1c-full",
    "W5-W1c-ratio", "W5-W2", "W5-W2-snapshot", "W5-catchup", "W5-catchup-start",
    "W5-catchup-ratio", "W5-catchup-rss", "W5-rebuild-s", "W5-rebuild-W1c",
    "W5-rebuild-W1c-ratio",
    *(w6_name(c, m) for c in W6_CUSTOMERS for m in W6_METRICS),
)
W5_TARGETS = (  # (label, record, limit, comparison): invariant's figures
    ("W5 W1 on the full store >= 0.85x on an empty one", "W5-W1-ratio", 0.85, ">="),
    ("W5 W1c on the full store >= 0.85x on an empty one", "W5-W1c-ratio", 0.85, ">="),
    ("W5 W2-snapshot in the full store <= 1 ms", "W5-W2-snapshot", 1.0, "<="),
    ("W5 catch-up >= 0.9x its first-100k rate", "W5-catchup-ratio", 0.9, ">="),
    ("W5 catch-up memory growth < 50 MiB", "W5-catchup-rss", 50.0, "<"),
)
SCHEMA_KEYS = ("workload", "backend", "system", "value", "unit")


def write_json(records: Sequence[Record], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    clean = [{k: r[k] for k in SCHEMA_KEYS} for r in records]
    path.write_text(json.dumps(clean, indent=1) + "\n")


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}x"


def _index(records: Iterable[Record]) -> dict[tuple[str, str, str], Record]:
    return {(r["workload"], r["backend"], r["system"]): r for r in records}


def _order(workload: str) -> tuple[int, str]:
    try:
        return WORKLOAD_ORDER.index(workload), workload
    except ValueError:
        return len(WORKLOAD_ORDER), workload


def w5_records(records: Sequence[Record]) -> list[Record]:
    """W5's records (scale), shown in a table of their own."""
    return [r for r in records if r["workload"].startswith("W5")]


def table(records: Sequence[Record]) -> str:
    """Rows workload/backend; a column per system; ratios invariant ÷ each baseline (W5's
    records are left to :func:`w5_table`)."""
    rows = _rows([r for r in records if not r["workload"].startswith("W5")], COLUMNS)
    return "\n".join([*rows, "", "ratios are invariant ÷ baseline: for commands/s higher "
                       "is better, for ms and MiB lower is better"])


TELEMETRY_COLUMNS = ("invariant-notelemetry", "invariant", "invariant-traced")


def telemetry_table(records: Sequence[Record]) -> str:
    """W1 without the telemetry hooks, with tracing off and on, and the ratios to the
    baseline (1.00: no difference)."""
    idx = _index(records)
    lines = ["W1, the cost of telemetry: commands/s without the hooks (baseline), with "
             "tracing off (as shipped) and on (a span per commit)", ""]
    header = ["backend", "no telemetry", "tracing off", "tracing on", "off/base", "on/base"]
    rows = [header]
    for backend in sorted({r["backend"] for r in records if r["workload"] == "W1"}):
        got = [idx.get(("W1", backend, s)) for s in TELEMETRY_COLUMNS]
        base, off, on = (None if r is None else r["value"] for r in got)
        rows.append([backend, _fmt(base), _fmt(off), _fmt(on), _ratio(off, base),
                     _ratio(on, base)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines += ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
              for r in rows]
    return "\n".join(lines)


def w5_table(records: Sequence[Record]) -> str:
    """W5: the store's size, then a row per measure; ratios invariant ÷ each baseline."""
    own = w5_records(records)
    sizes = sorted({(r["backend"], int(r["value"])) for r in own
                    if r["workload"] == "W5-events"})
    head = "W5, a full store: " + ", ".join(f"{b} {n:,} events" for b, n in sizes)
    runs = {int(r["value"]) for r in own if r["workload"] == "W5-runs"}
    if runs:
        head += (f" (one round: each catch-up and W1/W1c figure the median of {min(runs)} "
                 "runs in it; the fill and the rebuild once)")
    rows = _rows(own, W5_COLUMNS)
    return "\n".join([head, "", *rows, "", "-full/-empty: the same workload on the full store "
                       "and on an empty one; -ratio: full ÷ empty (catch-up: the whole log ÷ "
                       "its first 100,000 events); -rss: memory growth during the catch-up; "
                       "rebuild-W1c: the writers' rate while a projection is rebuilt and "
                       "switched"])


def _rows(records: Sequence[Record], columns: tuple[str, ...]) -> list[str]:
    idx = _index(records)
    rows_keys = sorted({(r["workload"], r["backend"]) for r in records},
                       key=lambda k: (k[1], _order(k[0])))
    header = ["workload", "backend", *columns, "unit", "inv/raw", "inv/es"]
    rows = [header]
    for workload, backend in rows_keys:
        values = {s: idx.get((workload, backend, s)) for s in columns}
        unit = next((v["unit"] for v in values.values() if v is not None), "")
        num = {s: (v["value"] if v is not None else None) for s, v in values.items()}
        rows.append([
            workload, backend, *(_fmt(num[s]) for s in columns), unit,
            _ratio(num[SUBJECT], num.get("raw")), _ratio(num[SUBJECT], num.get("eventsourcing")),
        ])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for n, r in enumerate(rows):
        cells = [c.ljust(w) if i < 2 or i == len(columns) + 2 else c.rjust(w)
                 for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def targets(records: Sequence[Record], rounds: int = 1) -> str:
    """The issue's targets, each as PASS/FAIL/n.a. with the numbers behind it."""
    idx = _index(records)

    def val(workload: str, backend: str, system: str) -> float | None:
        r = idx.get((workload, backend, system))
        return None if r is None else float(r["value"])

    lines = ["Targets (one run):" if rounds == 1 else f"Targets (medians of {rounds} rounds):"]
    backends = sorted({r["backend"] for r in records} & {"sqlite", "postgres"})
    for b in backends:
        own = [r["workload"] for r in records if r["backend"] == b]
        checks: list[tuple[str, float | None, float | None, str]] = []
        notes: list[str] = []
        if any(not w.startswith("W5") for w in own):
            checks, notes = _main_checks(val, b)
        if any(w.startswith("W5") for w in own):
            checks += [(label, val(name, b, SUBJECT), limit, op)
                       for label, name, limit, op in W5_TARGETS]
            rebuild = val("W5-rebuild-s", b, SUBJECT)
            writers = val("W5-rebuild-W1c-ratio", b, SUBJECT)
            if rebuild is not None and writers is not None:
                notes.append(f"(W5 rebuild beside the serving version and switch: "
                             f"{_fmt(rebuild)} s; writers meanwhile at {writers:.2f}x their rate)")
        for label, got, limit, op in checks:
            if got is None or limit is None:
                verdict, detail = "n.a.", "(not measured)"
            else:
                verdict = "PASS" if _holds(got, op, limit) else "FAIL"
                detail = f"{_fmt(got)} {op} {_fmt(limit)}"
            lines.append(f"  {b:<8}  {label:<52} {verdict:<5} {detail}")
        lines += [f"  {b:<8}  {note}" for note in notes]
    lines += w6_targets(val)
    return "\n".join(lines)


W6_TARGETS = (  # (label, metric at 32 customers, limit, comparison, modes it applies to)
    ("W6 32c: the backlog drains within 2 s", "drain", 2.0, "<=", ("sqlite", "postgres-nats")),
    ("W6 32c: >= 150 orders/s placed", "placed", 150.0, ">=", ("sqlite",)),
    ("W6 32c: >= 150 orders/s completed", "completed", 150.0, ">=", ("sqlite",)),
    ("W6 32c: p99 place -> shipped <= 1 s", "shipped-p99", 1000.0, "<=",
     ("sqlite", "postgres-nats")),
    ("W6 32c: p99 place -> 'received' email <= 2 s", "email-placed-p99", 2000.0, "<=",
     ("sqlite", "postgres-nats")),
    ("W6 32c: p99 place -> 'shipped' email <= 2 s", "email-shipped-p99", 2000.0, "<=",
     ("sqlite", "postgres-nats")),
)


SERVICES_FACTOR = 1.6
"""Issue #16: the services mode, which can use both cores, completes this many times what
one process (SQLite) does."""


def w6_targets(val: Any) -> list[str]:
    """Issue #16's targets for W6 at 32 customers, per mode that ran (``val(workload,
    backend, system)`` reads a record)."""
    lines = []
    for mode in ("sqlite", "postgres-nats"):
        if val(w6_name(32, "placed"), mode, SUBJECT) is None:
            continue
        for label, metric, limit, op, modes in W6_TARGETS:
            if mode not in modes:
                continue
            got = val(w6_name(32, metric), mode, SUBJECT)
            if got is None:
                verdict, detail = "n.a.", "(not measured)"
            else:
                verdict = "PASS" if _holds(got, op, limit) else "FAIL"
                detail = f"{_fmt(got)} {op} {_fmt(limit)}"
            width = 52 - max(0, len(mode) - 8)  # the verdicts stay in one column
            lines.append(f"  {mode:<8}  {label:<{width}} {verdict:<5} {detail}")
    services, one = (val(w6_name(32, "completed"), m, SUBJECT) for m in ("services", "sqlite"))
    if services is not None:
        label = "W6 32c: completes >= 1.6x one process (sqlite)"
        if one is None:
            verdict, detail = "n.a.", "(one process not measured)"
        else:
            verdict = "PASS" if services >= SERVICES_FACTOR * one else "FAIL"
            detail = f"{_fmt(services)} >= {_fmt(SERVICES_FACTOR * one)}"
        lines.append(f"  {'services':<8}  {label:<52} {verdict:<5} {detail}")
    return lines


def _main_checks(val: Any, b: str) -> tuple[list[tuple[str, float | None, float | None, str]],
                                            list[str]]:
    """W1, W1c, W2 and W3's targets on backend ``b``, and a note on W3's typed floor."""
    checks: list[tuple[str, float | None, float | None, str]] = []
    inv, raw = val("W1", b, SUBJECT), val("W1", b, "raw")
    checks.append(("W1 >= 0.7x raw W1", inv, None if raw is None else 0.7 * raw, ">="))
    checks.append(("W1c >= 3x raw W1 (sequential)", val("W1c", b, SUBJECT),
                   None if raw is None else 3 * raw, ">="))
    w2, w2raw = val("W2", b, SUBJECT), val("W2", b, "raw")
    checks.append(("W2 <= 2x raw W2", w2, None if w2raw is None else 2 * w2raw, "<="))
    checks.append(("W2-snapshot <= 1 ms (+ tail; tail is 0 events here)",
                   val("W2-snapshot", b, SUBJECT), 1.0, "<="))
    w3, w3raw = val("W3", b, SUBJECT), val("W3", b, "raw")
    checks.append(("W3 >= 0.8x raw W3 (catch-up, events/s)", w3,
                   None if w3raw is None else 0.8 * w3raw, ">="))
    typed = val("W3", b, "raw-typed")
    notes = []
    if w3raw is not None and typed is not None:
        # Not a target: how far the typed-event floor itself is from raw, and invariant
        # from that floor.
        notes.append(f"(W3 raw-typed, the floor of typed events: "
                     f"{_ratio(typed, w3raw)} raw; invariant {_ratio(w3, typed)} of it)")
    return checks, notes


def _holds(got: float, op: str, limit: float) -> bool:
    if op == ">=":
        return got >= limit
    if op == "<":
        return got < limit
    return got <= limit


def settings_block(settings: Sequence[tuple[str, str, str, dict[str, str]]]) -> str:
    """(backend, system, workload, settings) → one line per run, for durability parity."""
    lines = ["Durability settings as each system's own connection reports them:"]
    seen: set[tuple[str, str, str]] = set()
    for backend, system, _workload, s in settings:
        text = ", ".join(f"{k}={v}" for k, v in s.items())
        key = (backend, system, text)
        if key in seen:
            continue
        seen.add(key)
        lines.append(f"  {backend:<8}  {system:<18} {text}")
    return "\n".join(lines)
