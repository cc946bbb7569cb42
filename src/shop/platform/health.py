"""Moved to :mod:`invariant.hosting.health` (every host reports its health); ``check`` and
``outbox_lag`` now take the shop's host (``shop.host``)."""

from invariant.hosting.health import TIMEOUT, Attention, Health, check, outbox_lag

__all__ = ["TIMEOUT", "Attention", "Health", "check", "outbox_lag"]
