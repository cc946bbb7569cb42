"""shop: the reference system built on invariant.

One package per bounded context (identity, notifications, catalog, ordering, inventory,
payments, shipping, billing, analytics, fulfilment), each split into ``domain`` (pure),
``application`` (commands, handlers, queries), ``infrastructure`` (tables, adapters) and
``api`` (FastAPI routes). ``kernel`` is the shared kernel (ids, Money); ``platform`` wires
the contexts into one process (:class:`shop.platform.runtime.Shop`) and one HTTP app.
"""
