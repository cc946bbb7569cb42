"""The two distributions build as wheels from this repository: invariant's core installs
and works in a fresh environment with no extra, and shop's wheel carries shop alone.

The wheels are built without build isolation (setuptools comes with the development
install); the fresh environment gets the core's dependencies through pip with the pinned
constraints, from pip's cache when the development install has filled it, else the index."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from invariant.extras import EXTRAS

ROOT = Path(__file__).resolve().parents[2]
CHECK = Path(__file__).with_name("core_check.py")
SOURCES = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")


def pip(*args: str | Path) -> str:
    done = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check",
                           *map(str, args)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"pip {args} failed:\n{done.stdout}{done.stderr}"
    return done.stdout


def copy_of_sources(into: Path) -> Path:
    """The files the two builds read, copied, so that building leaves the work tree as it
    was (setuptools writes build/ and *.egg-info next to what it builds)."""
    for name in ("pyproject.toml", "README.md", "apps/shop/pyproject.toml"):
        (into / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, into / name)
    for package in ("invariant", "shop"):
        shutil.copytree(ROOT / "src" / package, into / "src" / package, ignore=SOURCES)
    return into


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    sources = copy_of_sources(tmp_path_factory.mktemp("sources"))
    dist = tmp_path_factory.mktemp("dist")
    for project in (sources, sources / "apps" / "shop"):
        pip("wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", dist, project)
    return {path.name.split("-")[0]: path for path in dist.glob("*.whl")}


@pytest.fixture(scope="module")
def core_python(wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
                ) -> Path:
    """The Python of a fresh environment holding invariant's wheel and its core only."""
    env = tmp_path_factory.mktemp("core-env")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", env], check=True)
    python = env / "bin" / "python"
    pip("--python", python, "install", "--quiet", "--only-binary=:all:",
        "-c", ROOT / "constraints.txt", wheels["invariant"])
    return python


def run(python: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(python), *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=python.parent)


def test_the_core_works_with_no_extra_and_each_adapter_names_its_extra(
    core_python: Path,
) -> None:
    done = run(core_python, CHECK)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "core round trip on SQLite" in done.stdout
    assert "every module imports or names its extra" in done.stdout
    assert ("needs invariant.messaging.brokers.nats: this part of invariant needs 'nats', "
            "which the 'nats' extra installs: pip install 'invariant[nats]'") in done.stdout


def test_the_invariant_command_without_the_cli_extra_says_to_install_it(
    core_python: Path,
) -> None:
    done = run(core_python.parent / "invariant", "--help")
    assert done.returncode != 0
    assert "MissingExtraError" in done.stderr
    assert "pip install 'invariant[cli]'" in done.stderr


def test_the_core_wheel_holds_invariant_alone_and_declares_every_extra(
    wheels: dict[str, Path],
) -> None:
    names, metadata = contents(wheels["invariant"])
    assert {name.split("/")[0] for name in names} == {"invariant", "invariant-0.1.0.dist-info"}
    assert "invariant/py.typed" in names
    extras = {line.split(": ")[1] for line in metadata if line.startswith("Provides-Extra")}
    assert set(EXTRAS) <= extras


def test_shops_wheel_holds_shop_alone_and_depends_on_invariant_with_its_extras(
    wheels: dict[str, Path],
) -> None:
    names, metadata = contents(wheels["shop"])
    assert {name.split("/")[0] for name in names} == {"shop", "shop-0.1.0.dist-info"}
    assert {"shop/__main__.py", "shop/py.typed",
            "shop/ordering/schemas/order.placed.v1.schema.json"} <= set(names)
    assert [line for line in metadata if line.startswith("Requires-Dist: invariant")] == [
        "Requires-Dist: invariant[cli,console,http,kafka,nats,otel,postgres,rabbitmq,redis,"
        "resilience]==0.1.0"]


def contents(wheel: Path) -> tuple[list[str], list[str]]:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [metadata] = [n for n in names if n.endswith(".dist-info/METADATA")]
        return names, archive.read(metadata).decode().splitlines()
