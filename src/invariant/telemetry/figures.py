"""The figures read on scrape: a state of the database, asked when Prometheus asks.

An application gives a function returning :class:`Figures` (shop's reads its health
check's, so each figure is computed one way); :func:`families` turns one reading into
Prometheus metric families, prefixed ``invariant_``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from invariant.projections.status import ProjectionStatus

PROJECTION_STATES = ("running", "rebuilding", "failed")


@dataclass(frozen=True, slots=True)
class Figures:
    """One reading of what waits and how far behind things are (None: did not answer)."""

    projections: Sequence[ProjectionStatus] = ()
    outbox_pending: int | None = None
    outbox_oldest_seconds: float | None = None
    dead_letters: Mapping[str, int] | None = None
    """By consumer."""
    pending_jobs: Mapping[str, int] | None = None
    """Jobs waiting in the queue, by job name."""
    dead_jobs: Mapping[str, int] | None = None
    parked_processes: Mapping[str, int] | None = None
    """Processes parked as needs-attention, by kind."""
    up: bool = True
    """False when the database did not answer (the other figures are then missing)."""


def families(figures: Figures) -> Iterator[Any]:
    """The metric families of one reading."""
    from prometheus_client.core import GaugeMetricFamily

    def gauge(name: str, doc: str, labels: Sequence[str] = ()) -> Any:
        return GaugeMetricFamily(f"invariant_{name}", doc, labels=list(labels))

    up = gauge("database_up", "1 when the database answered this scrape's reads")
    up.add_metric([], 1.0 if figures.up else 0.0)
    yield up
    yield from _projections(figures.projections, gauge)
    if figures.outbox_pending is not None:
        backlog = gauge("outbox_backlog", "Outbox rows not relayed to the broker yet")
        backlog.add_metric([], figures.outbox_pending)
        age = gauge("outbox_oldest_age_seconds", "Age of the oldest outbox row not relayed")
        age.add_metric([], figures.outbox_oldest_seconds or 0.0)
        yield from (backlog, age)
    for name, doc, label, counts in (
        ("dead_letters", "Messages parked in the dead-letter store", "consumer",
         figures.dead_letters),
        ("jobs_pending", "Jobs waiting to run (the job queue's depth)", "job",
         figures.pending_jobs),
        ("jobs_dead", "Jobs that exhausted their attempts", "job", figures.dead_jobs),
        ("processes_parked", "Processes parked as needs-attention", "kind",
         figures.parked_processes)):
        if counts is not None:
            family = gauge(name, doc, [label])
            for key, count in sorted(counts.items()):
                family.add_metric([key], count)
            yield family


def _projections(projections: Sequence[ProjectionStatus], gauge: Any) -> Iterator[Any]:
    labels = ["projection", "version"]
    events = gauge("projection_lag_events", "Events of the log after the checkpoint", labels)
    seconds = gauge("projection_lag_seconds", "How long the oldest unprojected event waits",
                    labels)
    state = gauge("projection_state", "1 for the projection's state (running, rebuilding, "
                  "failed)", [*labels, "state"])
    for p in projections:
        key = [p.name, str(p.version)]
        events.add_metric(key, p.lag_events)
        seconds.add_metric(key, p.lag_seconds)
        for name in PROJECTION_STATES:
            state.add_metric([*key, name], 1.0 if p.state == name else 0.0)
    yield from (events, seconds, state)
