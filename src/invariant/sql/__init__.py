"""The floor for SQL: what every part above the event store uses to reach its database.

* :mod:`invariant.sql.database`: the database handle (``ReadModelDatabase``: one synchronous
  SQLAlchemy Core transaction at a time, on SQLite or PostgreSQL), leases, upserts.
* :mod:`invariant.sql.locks`: advisory locks for transactions that must not overlap
  (setups, claims).
* :mod:`invariant.sql.handover`: claim, send, settle: rows handed to a broker at least once.
* :mod:`invariant.sql.engine`: async SQLAlchemy engines configured the way invariant needs.
* :mod:`invariant.sql.direct`: Core statements run on the driver's cursor, compiled once:
  the SQLite read models' connection (every plain statement) and ``first_row`` /
  ``execute_many`` (chosen statements on either database).
* :mod:`invariant.sql.errors`: what a driver error means (unique violation, serialization
  failure).
* :mod:`invariant.sql.outbox`: the outbox defined once, as data (standard library only):
  both adapters' DDL and every statement on the outbox are derived from it;
  :mod:`invariant.sql.outbox_table` derives its SQLAlchemy table.
* :mod:`invariant.sql.types`: column types that store values as invariant's tables do.

Import from the modules: this package's face imports nothing, so that the event store's
adapters can use the SQLAlchemy-free parts without loading SQLAlchemy.
"""
