"""Settings from environment variables, all prefixed ``INVARIANT_``, read in one place.

=============================  ==========================================================
``INVARIANT_STORE``            ``sqlite`` (default), ``postgres`` or ``memory``
``INVARIANT_SQLITE_PATH``      SQLite file (default ``var/invariant.db``)
``INVARIANT_POSTGRES_DSN``     e.g. ``postgresql://user@127.0.0.1:5432/app``
``INVARIANT_POSTGRES_SCHEMA``  schema holding invariant's tables (default ``public``)
``INVARIANT_POSTGRES_POOL``    maximum connections (default 20)
``INVARIANT_PROJECTIONS``      ``package.module:factory``: called with the event storage, it
                               returns a ``ProjectionSet`` (``invariant projections ...``)
=============================  ==========================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from invariant.domain.errors import ConfigurationError

PREFIX = "INVARIANT_"
STORES = ("sqlite", "postgres", "memory")


@dataclass(frozen=True, slots=True)
class Settings:
    store: str = "sqlite"
    sqlite_path: Path = Path("var/invariant.db")
    postgres_dsn: str | None = None
    postgres_schema: str = "public"
    postgres_pool: int = 20
    projections: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``environ`` (default: ``os.environ``); unknown keys are errors."""
        env = os.environ if environ is None else environ
        known = {"STORE", "SQLITE_PATH", "POSTGRES_DSN", "POSTGRES_SCHEMA", "POSTGRES_POOL",
                 "PROJECTIONS"}
        unknown = sorted(k for k in env if k.startswith(PREFIX) and k[len(PREFIX):] not in known
                         and not k.startswith(f"{PREFIX}TEST_") and not k.startswith(
                             f"{PREFIX}BENCH_"))
        if unknown:
            raise ConfigurationError(
                f"unknown setting(s) {', '.join(unknown)}; known: "
                + ", ".join(PREFIX + k for k in sorted(known))
            )
        store = env.get(f"{PREFIX}STORE", "sqlite").strip().lower()
        if store not in STORES:
            raise ConfigurationError(
                f"{PREFIX}STORE={store!r} is not one of {', '.join(STORES)}"
            )
        pool_text = env.get(f"{PREFIX}POSTGRES_POOL", "20")
        try:
            pool = int(pool_text)
        except ValueError:
            raise ConfigurationError(
                f"{PREFIX}POSTGRES_POOL must be a whole number, got {pool_text!r}"
            ) from None
        if pool < 1:
            raise ConfigurationError(f"{PREFIX}POSTGRES_POOL must be >= 1, got {pool}")
        dsn = env.get(f"{PREFIX}POSTGRES_DSN") or None
        if store == "postgres" and dsn is None:
            raise ConfigurationError(
                f"{PREFIX}STORE=postgres needs {PREFIX}POSTGRES_DSN, e.g. "
                "postgresql://postgres@127.0.0.1:5432/test"
            )
        return cls(
            store=store,
            sqlite_path=Path(env.get(f"{PREFIX}SQLITE_PATH", "var/invariant.db")),
            postgres_dsn=dsn,
            postgres_schema=env.get(f"{PREFIX}POSTGRES_SCHEMA", "public"),
            postgres_pool=pool,
            projections=env.get(f"{PREFIX}PROJECTIONS") or None,
        )
