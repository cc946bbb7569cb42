"""Drift: change the contract without a migration and the check names the difference."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from invariant.contracts.check import check_database, check_migrations, check_schemas
from invariant.contracts.loading import load_contracts
from invariant.contracts.migrations import Migrations, run_sync, upgrade
from invariant.sql.engine import create_engine
from tests.conftest import POSTGRES_DSN, fresh_pg_schema

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "users"
INVARIANT = str(Path(sys.executable).parent / "invariant")
EMAIL_LENGTH = 'email: str = field(format="email", length=255'
WIDER_EMAIL = 'email: str = field(format="email", length=320'


def copy_example(tmp_path: Path) -> tuple[str, Path]:
    """A copy of the example as its own importable package; returns (module, package dir)."""
    package = f"users_{uuid.uuid4().hex[:8]}"
    target = tmp_path / package
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("__pycache__"))
    return f"{package}.contracts", target


def edit_contract(package: Path, old: str, new: str) -> None:
    path = package / "contracts.py"
    source = path.read_text()
    assert old in source
    path.write_text(source.replace(old, new))


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(EXAMPLE.parents[1])}
    return subprocess.run([INVARIANT, "contracts", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def migrate(migrations: str, db: str, cwd: Path) -> int:
    return cli("upgrade", "--create", "--migrations", migrations, "--database", db,
               cwd=cwd).returncode


@pytest.fixture
def drifted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    module, package = copy_example(tmp_path)
    edit_contract(package, EMAIL_LENGTH, WIDER_EMAIL)
    nickname = "    nickname: str | None = field(None, length=40)\n\n"
    edit_contract(package, "    @rule(", nickname + "    @rule(")
    monkeypatch.syspath_prepend(str(tmp_path))
    return module, package


def test_the_committed_example_is_in_sync_with_its_contract(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'check.db'}"
    migrations = str(EXAMPLE / "migrations")
    assert migrate(migrations, db, tmp_path) == 0
    result = cli("check", "--contracts", "examples.users.contracts", "--database", db,
                 "--migrations", migrations, "--schemas", str(EXAMPLE / "schemas"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "in sync: UserProfile" in result.stdout


async def test_check_names_each_difference_against_the_migrations(
    drifted: tuple[str, Path],
) -> None:
    module, package = drifted
    found = await check_migrations(load_contracts(module), Migrations(package / "migrations"))
    assert [line.split("; run")[0] for line in found] == [
        "table users: column nickname is declared by the contract, missing in the migrations",
        "table users: column email type is VARCHAR(255) in the migrations, "
        "the contract says VARCHAR(320)",
    ]


async def test_check_names_each_difference_against_a_live_sqlite_database(
    drifted: tuple[str, Path], tmp_path: Path
) -> None:
    module, package = drifted
    engine = create_engine(f"sqlite:///{tmp_path / 'live.db'}")
    try:
        await run_sync(engine, upgrade, Migrations(package / "migrations"))
        found = await check_database(engine, load_contracts(module), None)
    finally:
        await engine.dispose()
    assert found == [
        "table users: column nickname is declared by the contract, missing in the database",
        "table users: column email type is VARCHAR(255) in the database, "
        "the contract says VARCHAR(320)",
    ]


async def test_check_names_each_difference_against_a_live_postgres_database(
    drifted: tuple[str, Path],
) -> None:
    module, package = drifted
    async with fresh_pg_schema() as schema:
        engine = create_engine(POSTGRES_DSN, schema=schema)
        try:
            await run_sync(engine, upgrade, Migrations(package / "migrations"))
            found = await check_database(engine, load_contracts(module),
                                         Migrations(package / "migrations"))
        finally:
            await engine.dispose()
    assert found == [
        "table users: column nickname is declared by the contract, missing in the database",
        "table users: column email type is VARCHAR(255) in the database, "
        "the contract says VARCHAR(320)",
    ]


def test_the_cli_exits_non_zero_naming_the_differences_then_zero_after_a_revision(
    drifted: tuple[str, Path], tmp_path: Path
) -> None:
    module, package = drifted
    migrations = str(package / "migrations")
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    assert migrate(migrations, db, tmp_path) == 0
    result = cli("check", "--contracts", module, "--database", db, "--migrations", migrations,
                 "--schemas", str(package / "schemas"), cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert "drift: table users: column email type is VARCHAR(255) in the database, " \
           "the contract says VARCHAR(320)" in lines
    assert any("column nickname is declared by the contract, missing in the migrations" in line
               for line in lines)
    assert any("JSON Schema of UserProfile" in line and "differs" in line for line in lines)

    made = cli("revision", "--contracts", module, "--migrations", migrations,
               "-m", "widen email, add nickname", cwd=tmp_path)
    assert made.returncode == 0 and "created" in made.stdout, made.stderr
    assert migrate(migrations, db, tmp_path) == 0
    assert cli("schema", "--contracts", module, "--out", str(package / "schemas"),
               cwd=tmp_path).returncode == 0
    again = cli("check", "--contracts", module, "--database", db, "--migrations", migrations,
                "--schemas", str(package / "schemas"), cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr


def test_a_database_behind_the_migrations_head_is_reported(tmp_path: Path) -> None:
    with contextlib.closing(sqlite3.connect(tmp_path / "unmigrated.db")) as conn:
        conn.execute("CREATE TABLE unrelated (x INTEGER)")
    db = f"sqlite:///{tmp_path / 'unmigrated.db'}"
    result = cli("check", "--contracts", "examples.users.contracts", "--database", db,
                 "--migrations", str(EXAMPLE / "migrations"), cwd=tmp_path)
    assert result.returncode == 1
    assert "drift: table users: declared by a contract, missing in the database" in result.stdout
    assert "the migrations' head is" in result.stdout


def test_a_changed_schema_file_is_reported(tmp_path: Path) -> None:
    contracts = load_contracts("examples.users.contracts")
    (tmp_path / "UserProfile.schema.json").write_text('{"type": "object"}')
    assert check_schemas(contracts, tmp_path)[0].startswith(
        "JSON Schema of UserProfile: ")
    assert check_schemas(contracts, EXAMPLE / "schemas") == []


def test_a_bad_contracts_module_is_a_clear_error(tmp_path: Path) -> None:
    result = cli("check", "--contracts", "no.such.module", "--migrations", "x", cwd=tmp_path)
    assert result.returncode == 2
    assert "cannot import 'no.such.module'" in result.stderr
