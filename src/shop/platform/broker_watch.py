"""Moved to :mod:`invariant.hosting.broker_watch` (every host watches its broker)."""

from invariant.hosting.broker_watch import BrokerWatch

__all__ = ["BrokerWatch"]
