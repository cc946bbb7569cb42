"""Benchmarks: invariant against raw driver code and eventsourcing 9.5, on SQLite and PostgreSQL.

Run ``python -m benchmarks --help``. Every (backend, system, workload) runs in a fresh
subprocess (``python -m benchmarks.run_one``) so peak RSS and caches never leak between runs.
"""
