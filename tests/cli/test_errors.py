"""Every operator command, pointed at a database that is not there or does not answer,
fails with one line naming the setting (or flag) and what to do, exit status 2, and
creates nothing: no SQLite file, no folder, no PostgreSQL schema."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from typer.testing import CliRunner

from invariant.cli import app
from tests.conftest import POSTGRES_DSN, require_server
from tests.ports import free_port

INVARIANT = str(Path(sys.executable).parent / "invariant")
BANK = "examples.bank.projections:operations"
COMMANDS = [
    ["projections", "status"], ["projections", "rebuild", "account_summary"],
    ["projections", "resume", "account_summary"],
    ["processes", "list"], ["processes", "show", "p-1"], ["processes", "resume", "p-1"],
    ["deadletters", "list"], ["deadletters", "replay", "1"],
    ["consumers", "run", "--seconds", "0.1"],
    ["relay", "run", "--seconds", "0.1"], ["relay", "lag"],
    ["jobs", "work", "--seconds", "0.1"], ["jobs", "forward", "--seconds", "0.1"],
    ["jobs", "dead"], ["jobs", "retry", "1"],
]
"""Every command that opens the application's database."""


def closed_port() -> int:
    """A local port nothing listens on."""
    return free_port()


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield int(s.getsockname()[1])


def require_postgres() -> None:
    async def probe() -> None:
        conn = await asyncpg.connect(POSTGRES_DSN, timeout=5)
        await conn.close()

    import asyncio

    try:
        asyncio.run(probe())
    except (OSError, asyncpg.PostgresError) as exc:
        require_server("PostgreSQL", exc)


def invoke(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run the command line in this process (without the INVARIANT_* of the caller)."""
    unset = dict.fromkeys(k for k in os.environ if k.startswith("INVARIANT_")
                          and not k.startswith("INVARIANT_TEST_"))
    result = CliRunner().invoke(app, args, env={**unset, "INVARIANT_APP": BANK, **env})
    return result.exit_code, result.stdout, result.stderr


def assert_one_line(args: list[str], env: dict[str, str], *expected: str) -> str:
    code, out, err = invoke(args, env)
    assert (code, out) == (2, ""), (args, code, out, err)
    assert err.endswith("\n") and err.count("\n") == 1, (args, err)
    assert err.startswith("error: "), (args, err)
    for part in expected:
        assert part in err, (args, err)
    return err.strip()


def files_under(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*"))


def pg(dsn: str, schema: str = "public") -> dict[str, str]:
    return {"INVARIANT_STORE": "postgres", "INVARIANT_POSTGRES_DSN": dsn,
            "INVARIANT_POSTGRES_SCHEMA": schema}


# -- SQLite ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_missing_sqlite_file_is_named_and_never_created(tmp_path: Path, args: list[str]
                                                          ) -> None:
    missing = tmp_path / "var" / "shop" / "shop.db"

    line = assert_one_line(args, {"INVARIANT_SQLITE_PATH": str(missing)},
                           f"no SQLite database at {missing} (INVARIANT_SQLITE_PATH)",
                           "operator commands never create a database")

    assert "point INVARIANT_SQLITE_PATH at the application's database file" in line
    assert files_under(tmp_path) == []


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_file_that_is_not_sqlite_is_named(tmp_path: Path, args: list[str]) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database\n")

    assert_one_line(args, {"INVARIANT_SQLITE_PATH": str(notes)},
                    f"{notes} (INVARIANT_SQLITE_PATH) is not an SQLite database: point "
                    "INVARIANT_SQLITE_PATH at the application's database file")

    assert notes.read_text() == "not a database\n"
    assert files_under(tmp_path) == [notes]


def test_an_empty_file_or_a_folder_is_not_a_database(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    assert_one_line(["processes", "list"], {"INVARIANT_SQLITE_PATH": str(empty)},
                    f"{empty} (INVARIANT_SQLITE_PATH) is empty")
    assert_one_line(["processes", "list"], {"INVARIANT_SQLITE_PATH": str(tmp_path)},
                    f"{tmp_path} (INVARIANT_SQLITE_PATH) is a directory, not an SQLite "
                    "database file")
    assert empty.stat().st_size == 0 and files_under(tmp_path) == [empty]


def test_a_relative_path_says_where_it_was_looked_for(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert_one_line(["jobs", "dead"], {"INVARIANT_SQLITE_PATH": "var/app.db"},
                    f"no SQLite database at var/app.db (INVARIANT_SQLITE_PATH, relative to "
                    f"{tmp_path})")
    assert files_under(tmp_path) == []


def test_the_memory_store_has_nothing_to_operate() -> None:
    assert_one_line(["processes", "list"], {"INVARIANT_STORE": "memory"},
                    "INVARIANT_STORE=memory keeps nothing between processes")


# -- PostgreSQL -----------------------------------------------------------------------------

@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_an_unreachable_postgres_is_one_line(args: list[str]) -> None:
    port = closed_port()
    assert_one_line(args, pg(f"postgresql://postgres@127.0.0.1:{port}/test"),
                    f"cannot reach PostgreSQL at 127.0.0.1:{port} (INVARIANT_POSTGRES_DSN): "
                    "Connection refused; start the server, or correct the host and port in "
                    "INVARIANT_POSTGRES_DSN")


def test_an_unknown_host_is_one_line() -> None:
    assert_one_line(["processes", "list"], pg("postgresql://postgres@no-such-host.invalid/x"),
                    "cannot reach PostgreSQL at no-such-host.invalid (INVARIANT_POSTGRES_DSN)")


@pytest.mark.parametrize("args", [["processes", "list"], ["projections", "status"]],
                         ids=" ".join)
def test_a_postgres_that_does_not_answer_times_out_in_one_line(args: list[str]) -> None:
    with silent_server() as port:
        assert_one_line(args, pg(f"postgresql://postgres@127.0.0.1:{port}/test"),
                        f"PostgreSQL at 127.0.0.1:{port} did not answer within 5 s "
                        "(INVARIANT_POSTGRES_DSN)")


@pytest.mark.parametrize("dsn", [
    "postgresql://app:s3cret@db-host:port/app", "mysql://app:s3cret@db-host/app",
    "postgresql://app:s3cret@[::1/app"])
@pytest.mark.parametrize("args", [["processes", "list"], ["deadletters", "list"],
                                  ["projections", "status"]], ids=" ".join)
def test_a_malformed_dsn_is_named_without_its_password(dsn: str, args: list[str]) -> None:
    line = assert_one_line(args, pg(dsn), "INVARIANT_POSTGRES_DSN is not a PostgreSQL URL",
                           "expected postgresql://user[:password]@host[:port]/database")
    assert "s3cret" not in line


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_an_unknown_database_is_named_and_not_created(args: list[str]) -> None:
    require_postgres()
    name = f"nodb_{uuid.uuid4().hex[:8]}"
    assert_one_line(args, pg(POSTGRES_DSN.rsplit("/", 1)[0] + f"/{name}"),
                    f'database "{name}" does not exist (INVARIANT_POSTGRES_DSN)',
                    "operator commands never create a database")


@pytest.mark.parametrize("args", [["processes", "list"], ["jobs", "dead"],
                                  ["projections", "status"]], ids=" ".join)
def test_an_unknown_role_is_named(args: list[str]) -> None:
    require_postgres()
    role = f"nobody_{uuid.uuid4().hex[:8]}"
    dsn = POSTGRES_DSN.replace("postgres@", f"{role}@", 1)
    assert_one_line(args, pg(dsn), f'refused the login: role "{role}" does not exist '
                    "(INVARIANT_POSTGRES_DSN): correct the user or password in it")


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_an_unknown_schema_is_named_and_not_created(args: list[str]) -> None:
    require_postgres()
    schema = f"noschema_{uuid.uuid4().hex[:8]}"
    assert_one_line(args, pg(POSTGRES_DSN, schema),
                    f"has no schema '{schema}' (INVARIANT_POSTGRES_SCHEMA)",
                    "operator commands never create a database")

    async def exists() -> bool:
        conn = await asyncpg.connect(POSTGRES_DSN)
        try:
            return bool(await conn.fetchval(
                "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema))
        finally:
            await conn.close()

    import asyncio

    assert not asyncio.run(exists())


# -- contracts: the --database and --schema flags -------------------------------------------

CONTRACTS = ["contracts", "check", "--contracts", "examples.users.contracts",
             "--migrations", "examples/users/migrations"]
UPGRADE = ["contracts", "upgrade", "--migrations", "examples/users/migrations"]


def test_contracts_name_the_database_flag(tmp_path: Path) -> None:
    missing = tmp_path / "var" / "users.db"
    for args in (CONTRACTS, UPGRADE):
        assert_one_line([*args, "--database", f"sqlite:///{missing}"], {},
                        f"no SQLite database at {missing} (--database)")
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    assert_one_line([*CONTRACTS, "--database", f"sqlite:///{notes}"], {},
                    f"{notes} (--database) is not an SQLite database")
    assert_one_line([*CONTRACTS, "--database", "users.db"], {},
                    "--database 'users.db' is not a database URL")
    assert_one_line([*CONTRACTS, "--database", "mysql://app:s3cret@db/app"], {},
                    "--database 'mysql://app:***@db/app' is not an SQLite or PostgreSQL URL")
    port = closed_port()
    assert_one_line([*CONTRACTS, "--database", f"postgresql://postgres@127.0.0.1:{port}/t"],
                    {}, f"cannot reach PostgreSQL at 127.0.0.1:{port} (--database)")
    # --create starts a new SQLite file, in an existing folder only
    assert_one_line([*UPGRADE, "--create", "--database", f"sqlite:///{missing}"], {},
                    f"no SQLite database at {missing} (--database)")
    assert files_under(tmp_path) == [notes]


def test_contracts_name_an_unknown_schema_flag() -> None:
    require_postgres()
    schema = f"noschema_{uuid.uuid4().hex[:8]}"
    assert_one_line([*CONTRACTS, "--database", POSTGRES_DSN, "--schema", schema], {},
                    f"has no schema '{schema}' (--schema)")


# -- the installed script -------------------------------------------------------------------

def test_the_installed_command_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVARIANT_")}
    for settings in ({"INVARIANT_SQLITE_PATH": str(tmp_path / "var" / "app.db")},
                     pg(f"postgresql://postgres@127.0.0.1:{closed_port()}/test")):
        done = subprocess.run([INVARIANT, "processes", "list"], env={**env, **settings},
                              cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2
        assert done.stdout == ""
        assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("error: ")
    assert files_under(tmp_path) == []
