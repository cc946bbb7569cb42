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
SCHEMA_KEYS = ("workload", "backend", "system", "value", "unit")
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
    *(w6_name(c, m) for c in W6_CUSTOMERS for m in W6_METRICS),
)


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


def table(records: Sequence[Record]) -> str:
    """Rows workload/backend; a column per system; ratios invariant ÷ each baseline."""
    idx = _index(records)
    rows_keys = sorted({(r["workload"], r["backend"]) for r in records},
                       key=lambda k: (k[1], _order(k[0])))
    header = ["workload", "backend", *COLUMNS, "unit", "inv/raw", "inv/es"]
    rows = [header]
    for workload, backend in rows_keys:
        values = {s: idx.get((workload, backend, s)) for s in COLUMNS}
        unit = next((v["unit"] for v in values.values() if v is not None), "")
        num = {s: (v["value"] if v is not None else None) for s, v in values.items()}
        rows.append([
            workload, backend, *(_fmt(num[s]) for s in COLUMNS), unit,
            _ratio(num[SUBJECT], num["raw"]), _ratio(num[SUBJECT], num["eventsourcing"]),
        ])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for n, r in enumerate(rows):
        cells = [c.ljust(w) if i < 2 or i == len(COLUMNS) + 2 else c.rjust(w)
                 for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines.append("ratios are invariant ÷ baseline: for commands/s higher is better, "
                 "for ms and MiB lower is better")
    return "\n".join(lines)


def targets(records: Sequence[Record], rounds: int = 1) -> str:
    """The issue's targets, each as PASS/FAIL/n.a. with the numbers behind it."""
    idx = _index(records)

    def val(workload: str, backend: str, system: str) -> float | None:
        r = idx.get((workload, backend, system))
        return None if r is None else float(r["value"])

    lines = ["Targets (one run):" if rounds == 1 else f"Targets (medians of {rounds} rounds):"]
    backends = sorted({r["backend"] for r in records} & {"sqlite", "postgres"})
    for b in backends:
        checks: list[tuple[str, float | None, float | None, str]] = []
        inv, raw = val("W1", b, SUBJECT), val("W1", b, "raw")
        checks.append(("W1 >= 0.7x raw W1", inv, None if raw is None else 0.7 * raw, ">="))
        inv_c = val("W1c", b, SUBJECT)
        checks.append(("W1c >= 3x raw W1 (sequential)", inv_c,
                       None if raw is None else 3 * raw, ">="))
        w2, w2raw = val("W2", b, SUBJECT), val("W2", b, "raw")
        checks.append(("W2 <= 2x raw W2", w2, None if w2raw is None else 2 * w2raw, "<="))
        checks.append(("W2-snapshot <= 1 ms (+ tail; tail is 0 events here)",
                       val("W2-snapshot", b, SUBJECT), 1.0, "<="))
        w3, w3raw = val("W3", b, SUBJECT), val("W3", b, "raw")
        checks.append(("W3 >= 0.8x raw W3 (catch-up, events/s)", w3,
                       None if w3raw is None else 0.8 * w3raw, ">="))
        typed = val("W3", b, "raw-typed")
        if w3raw is not None and typed is not None:
            # Not a target: how far the typed-event floor itself is from raw, and invariant
            # from that floor.
            lines_after = (f"  {b:<8}  (W3 raw-typed, the floor of typed events: "
                           f"{_ratio(typed, w3raw)} raw; invariant {_ratio(w3, typed)} of it)")
        else:
            lines_after = None
        for label, got, limit, op in checks:
            if got is None or limit is None:
                verdict, detail = "n.a.", "(not measured)"
            else:
                ok = got >= limit if op == ">=" else got <= limit
                verdict = "PASS" if ok else "FAIL"
                detail = f"{_fmt(got)} {op} {_fmt(limit)}"
            lines.append(f"  {b:<8}  {label:<52} {verdict:<5} {detail}")
        if lines_after is not None:
            lines.append(lines_after)
    lines += w6_targets(val)
    return "\n".join(lines)


def w6_targets(val: Any) -> list[str]:
    """Issue #16's targets for W6 at 32 customers, per mode that ran (``val(workload,
    backend, system)`` reads a record)."""
    lines = []
    for mode in ("sqlite", "postgres-nats"):
        if val(w6_name(32, "placed"), mode, SUBJECT) is None:
            continue
        checks: list[tuple[str, str, float, str]] = [
            ("drain", "W6 32c: the backlog drains within 2 s", 2.0, "<="),
            ("shipped-p99", "W6 32c: p99 place -> shipped <= 1 s", 1000.0, "<="),
            ("email-placed-p99", "W6 32c: p99 place -> 'received' email <= 2 s", 2000.0, "<="),
            ("email-shipped-p99", "W6 32c: p99 place -> 'shipped' email <= 2 s", 2000.0,
             "<="),
        ]
        if mode == "sqlite":
            checks[1:1] = [("placed", "W6 32c: >= 150 orders/s placed", 150.0, ">="),
                           ("completed", "W6 32c: >= 150 orders/s completed", 150.0, ">=")]
        for metric, label, limit, op in checks:
            got = val(w6_name(32, metric), mode, SUBJECT)
            if got is None:
                verdict, detail = "n.a.", "(not measured)"
            else:
                ok = got >= limit if op == ">=" else got <= limit
                verdict, detail = "PASS" if ok else "FAIL", f"{_fmt(got)} {op} {_fmt(limit)}"
            width = 52 - max(0, len(mode) - 8)  # the verdicts stay in one column
            lines.append(f"  {mode:<8}  {label:<{width}} {verdict:<5} {detail}")
    return lines


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
