"""W6's figures and its correctness check, from what the load script saw and what the
event store and the mail sink recorded (pure: no I/O here).

An order is *complete* when it is shipped (``ordering.OrderShipped`` recorded) and both of
its emails ("received" and "shipped") reached the mail sink: its completion time is the
latest of the three. Latencies run from the moment the load script read the response to
``POST /orders/{id}/place``.
"""

from __future__ import annotations

import itertools
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from benchmarks.w6_facts import (
    CANCELLED,
    CHARGED,
    PLACED,
    REFUNDED,
    RESERVED,
    SHIPMENT,
    SHIPPED,
    Relayed,
    StoredEvent,
)
from benchmarks.w6_load import Intake

EMAILS = ("order_placed", "order_shipped")
OrderMails = Mapping[str, Mapping[str, list[float]]]


class IncorrectOutcome(AssertionError):
    """An order was lost, doubled, charged twice, or an email is missing or doubled."""


@dataclass(frozen=True, slots=True)
class Figures:
    """One W6 run's figures (rates per second, latencies in milliseconds)."""

    orders: int
    intake_s: float
    placed_per_s: float
    completed_per_s: float
    shipped_during_intake_per_s: float
    backlog: int
    drain_s: float
    shipped_p50_ms: float
    shipped_p99_ms: float
    email_p50_ms: dict[str, float]
    email_p99_ms: dict[str, float]


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile of ``values`` (``q`` in 0..1)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def check(intake: Intake, events: Iterable[StoredEvent], mails: OrderMails, *,
          charges: int, refunds: int) -> None:
    """Raise :class:`IncorrectOutcome` naming every order that was not placed, shipped,
    charged and emailed exactly once (and any order the store holds that the load script
    never placed); ``charges``/``refunds`` are the payment provider's own counts."""
    placed = {p.order_id for p in intake.placed}
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for e in events:
        counts[e.order_id][e.event_type] += 1
    problems: list[str] = []
    if len(placed) != len(intake.placed):
        problems.append("the load script got one order id twice")
    for order_id in sorted(placed):
        seen = counts.get(order_id, Counter())
        for event_type in (PLACED, CHARGED, SHIPMENT, SHIPPED):
            if seen[event_type] != 1:
                problems.append(f"order {order_id}: {seen[event_type]} x {event_type}")
        for event_type in (CANCELLED, REFUNDED):
            if seen[event_type]:
                problems.append(f"order {order_id}: {seen[event_type]} x {event_type}")
        kinds = mails.get(order_id, {})
        for kind in EMAILS:
            if len(kinds.get(kind, ())) != 1:
                problems.append(f"order {order_id}: {len(kinds.get(kind, ()))} {kind} emails")
        if kinds.get("order_cancelled"):
            problems.append(f"order {order_id}: a cancellation email")
    strays = sorted(o for o, seen in counts.items() if seen[PLACED] and o not in placed)
    problems += [f"order {o}: placed in the store, never by the load script" for o in strays]
    if charges != len(placed) or refunds:
        problems.append(f"the payment provider made {charges} charges and {refunds} refunds "
                        f"for {len(placed)} orders")
    if problems:
        shown = problems[:20]
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        raise IncorrectOutcome(f"{len(problems)} problem(s): " + "; ".join(shown) + more)


def figures(intake: Intake, events: Iterable[StoredEvent], mails: OrderMails) -> Figures:
    """The figures of a run that passed :func:`check`."""
    shipped_at = {e.order_id: e.recorded for e in events if e.event_type == SHIPPED}
    orders = intake.placed
    if not orders:
        raise IncorrectOutcome("no order was placed during the intake")
    to_ship = [1000 * (shipped_at[p.order_id] - p.placed) for p in orders]
    email_ms = {kind: [1000 * (mails[p.order_id][kind][0] - p.placed) for p in orders]
                for kind in EMAILS}
    completed = [max(shipped_at[p.order_id], *(mails[p.order_id][k][0] for k in EMAILS))
                 for p in orders]
    shipped_in_intake = sum(1 for t in shipped_at.values() if t <= intake.ended)
    return Figures(
        orders=len(orders),
        intake_s=intake.seconds,
        placed_per_s=len(orders) / intake.seconds,
        completed_per_s=len(orders) / (max(completed) - intake.began),
        shipped_during_intake_per_s=shipped_in_intake / intake.seconds,
        backlog=len(orders) - shipped_in_intake,
        drain_s=max(0.0, max(completed) - intake.ended),
        shipped_p50_ms=statistics.median(to_ship),
        shipped_p99_ms=percentile(to_ship, 0.99),
        email_p50_ms={k: statistics.median(v) for k, v in email_ms.items()},
        email_p99_ms={k: percentile(v, 0.99) for k, v in email_ms.items()},
    )


FULFILMENT = ((PLACED, "placed → reserved"), (RESERVED, "reserved → charged"),
              (CHARGED, "charged → shipment"), (SHIPMENT, "shipment → shipped"),
              (SHIPPED, ""))
"""The fulfilment process manager's steps, each an event that starts the next command."""


def hops(events: Iterable[StoredEvent], relayed: Iterable[Relayed], mails: OrderMails
         ) -> dict[str, float]:
    """Median seconds of each hop on the way to shipped and to the emails: the process
    manager's steps (from one event to the next), then, per email, the relay (event to
    broker), the notifications consumer (broker to its inbox) and the job worker with
    SMTP (inbox to the mail sink). Hops with no data (a server broker) are left out."""
    at: dict[str, dict[str, float]] = defaultdict(dict)
    for e in events:
        at[e.order_id].setdefault(e.event_type, e.recorded)
    spans: dict[str, list[float]] = defaultdict(list)
    for times in at.values():
        for (start, label), (end, _) in itertools.pairwise(FULFILMENT):
            if start in times and end in times:
                spans[label].append(times[end] - times[start])
    emails = {"order.placed": (PLACED, "order_placed"), "order.shipped": (SHIPPED,
                                                                          "order_shipped")}
    for r in relayed:
        event_type, kind = emails[r.message_type]
        recorded = at.get(r.order_id, {}).get(event_type)
        sent = mails.get(r.order_id, {}).get(kind)
        if recorded is None or not sent:
            continue
        spans[f"{kind}: relay"].append(r.published - recorded)
        spans[f"{kind}: consumer"].append(r.handled - r.published)
        spans[f"{kind}: job + SMTP"].append(sent[0] - r.handled)
    return {label: statistics.median(values) for label, values in spans.items()}
