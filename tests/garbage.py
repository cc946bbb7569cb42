"""Finding reference cycles: garbage that only the cyclic collector can free."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cyclic_garbage() -> Iterator[list[str]]:
    """The type names of the objects made inside the block that reference counting alone
    could not free (filled in when the block ends); the collector is restored after."""
    enabled = gc.isenabled()
    while gc.collect():  # what one collection frees can let go of more (a weak
        pass             # reference's callback dropping a cache entry): all of it first
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    found: list[str] = []
    try:
        yield found
        gc.collect()
        found.extend(sorted({type(o).__qualname__ for o in gc.garbage}))
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if enabled:
            gc.enable()
