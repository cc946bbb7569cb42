"""Pausing the cyclic garbage collector while a batch of short-lived objects is built.

Decoding a page of events or a long stream makes thousands of objects that all live until
the batch is applied and are then freed by reference counting alone. With the collector on,
they trigger collections that scan them (and the whole heap) again and again: up to half the
decoding time. Pausing defers collections; it loses none.

Pauses nest and overlap (several catch-ups in one event loop): they are counted, and the
collector resumes when the last one ends, and only if a pause turned it off (an application
that runs with it off keeps it off).
"""

from __future__ import annotations

import gc

_depth = 0
_turned_off = False


def pause() -> None:
    """Begin a pause (pair it with :func:`resume`)."""
    global _depth, _turned_off
    if _depth == 0 and gc.isenabled():
        gc.disable()
        _turned_off = True
    _depth += 1


def resume() -> None:
    """End a pause; the last one to end turns the collector back on."""
    global _depth, _turned_off
    _depth -= 1
    if _depth == 0 and _turned_off:
        _turned_off = False
        gc.enable()


def paused() -> bool:
    """True while a pause holds the collector off."""
    return _turned_off
