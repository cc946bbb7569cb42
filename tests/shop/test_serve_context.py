"""``python -m shop serve CONTEXT`` refuses what would make a service that cannot work,
in one line naming the setting, and exits non-zero instead of retrying in silence."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_DSN
from tests.shop.conftest import free_port

pytestmark = pytest.mark.timeout(120)

PEERS = {"SHOP_SERVICE_IDENTITY_URL": "http://127.0.0.1:9", "SHOP_SERVICE_CATALOG_URL":
         "http://127.0.0.1:9", "SHOP_SERVICE_FULFILMENT_URL": "http://127.0.0.1:9"}
NATS = {"INVARIANT_BROKER": "nats", "INVARIANT_BROKER_URL": "nats://127.0.0.1:4222"}


def serve(tmp_path: Path, context: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SHOP_", "INVARIANT_"))}
    return subprocess.run(
        [sys.executable, "-m", "shop", "serve", context], capture_output=True, text=True,
        timeout=90, env={**base, "SHOP_DATA": str(tmp_path), "SHOP_PORT": str(free_port()),
                         **env})


def refused(result: subprocess.CompletedProcess[str], status: int, *needles: str) -> None:
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    last = result.stderr.strip().splitlines()[-1]
    for needle in needles:
        assert needle in last, last


def test_an_unknown_context_is_named(tmp_path: Path) -> None:
    refused(serve(tmp_path, "orderin", **NATS), 2, "unknown context 'orderin'", "ordering")


def test_a_broker_other_services_cannot_reach_is_refused(tmp_path: Path) -> None:
    refused(serve(tmp_path, "ordering", **PEERS), 2, "INVARIANT_BROKER=sql",
            "a service needs a broker every service shares")


def test_a_missing_service_url_is_named(tmp_path: Path) -> None:
    peers = {k: v for k, v in PEERS.items() if "CATALOG" not in k}
    refused(serve(tmp_path, "ordering", **NATS, **peers), 2,
            "SHOP_SERVICE_CATALOG_URL is not set")


def test_a_malformed_service_url_is_named(tmp_path: Path) -> None:
    refused(serve(tmp_path, "ordering", **NATS, **{**PEERS, "SHOP_SERVICE_IDENTITY_URL":
                                                   "ftp://identity"}),
            2, "SHOP_SERVICE_IDENTITY_URL", "absolute http")


def test_a_database_that_does_not_answer_names_the_dsn(tmp_path: Path) -> None:
    refused(serve(tmp_path, "billing", **NATS, **PEERS, INVARIANT_STORE="postgres",
                  INVARIANT_POSTGRES_DSN=f"postgresql://postgres@127.0.0.1:{free_port()}/x"),
            1, "the billing service cannot start", "INVARIANT_POSTGRES_DSN")


@pytest.mark.postgres
def test_a_schema_behind_the_code_names_the_migrate_command(tmp_path: Path) -> None:
    refused(serve(tmp_path, "billing", **NATS, **PEERS, INVARIANT_STORE="postgres",
                  INVARIANT_POSTGRES_DSN=POSTGRES_DSN,
                  INVARIANT_POSTGRES_SCHEMA=f"never_{free_port()}"),
            1, "python -m shop migrate billing")


def test_a_broker_that_does_not_answer_names_the_broker_url(tmp_path: Path) -> None:
    db = str(tmp_path / "billing.db")
    subprocess.run([sys.executable, "-m", "shop", "migrate", "billing"], check=True,
                   capture_output=True, env={**os.environ, "INVARIANT_STORE": "sqlite",
                                             "INVARIANT_SQLITE_PATH": db})
    refused(serve(tmp_path, "billing", **PEERS, INVARIANT_STORE="sqlite",
                  INVARIANT_SQLITE_PATH=db, INVARIANT_BROKER="nats",
                  INVARIANT_BROKER_URL=f"nats://127.0.0.1:{free_port()}"),
            1, "cannot connect to NATS", "INVARIANT_BROKER_URL")
