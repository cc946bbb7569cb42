"""Billing: a bounded context that owns no aggregates, only a view of what ordering and
payments did (seed example 69: a read model across bounded contexts)."""
