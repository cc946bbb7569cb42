"""Pausing the cyclic garbage collector while a projection catches up: an explicit opt-in
(``ProjectionRunner(..., pause_gc=True)``), scoped to the runner's catch-ups.

Decoding a page of events makes thousands of objects that all live until the page is
applied and are then freed by reference counting alone. With the collector on, they trigger
collections that scan them (and the whole heap) again and again: up to half the decoding
time. Pausing defers collections; it loses none: the young generations are still collected
every second and everything every minute (:meth:`CollectorPause.tick`), so that cyclic
garbage of other tasks cannot pile up during a long catch-up.

The collector is the whole process's: a pause turns it off only if it was on, and turns it
back on only if it turned it off (an application that runs with it off keeps it off).
"""

from __future__ import annotations

import gc
import time


class CollectorPause:
    """The collector held off while any catch-up of one runner is inside ``with pause:``.

    Holds nest and overlap (the runner's projections catch up in tasks of their own): the
    first turns the collector off, the last to end turns it back on. A pause made with
    ``enabled=False`` does nothing at all.
    """

    __slots__ = ("_full", "_holds", "_turned_off", "_young", "enabled")

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._holds = 0
        self._turned_off = False
        self._young = self._full = 0.0

    @property
    def paused(self) -> bool:
        """True while this pause holds the collector off."""
        return self._turned_off

    def __enter__(self) -> CollectorPause:
        if self.enabled:
            if self._holds == 0 and gc.isenabled():
                gc.disable()
                self._turned_off = True
                self._young = self._full = time.monotonic()
            self._holds += 1
        return self

    def tick(self) -> None:
        """Between two pages: collect the young generations if a second has passed since
        the last time, everything if a minute has."""
        if not self._turned_off:
            return
        now = time.monotonic()
        if now - self._young >= 1.0:
            full = now - self._full >= 60.0
            gc.collect(2 if full else 1)
            self._young = now
            if full:
                self._full = now

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._holds -= 1
            if self._holds == 0 and self._turned_off:
                self._turned_off = False
                gc.enable()
