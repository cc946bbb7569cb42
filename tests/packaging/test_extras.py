"""An adapter imported without its extra names the extra to install (invariant.extras)."""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path

import pytest

from invariant.domain.errors import ConfigurationError
from invariant.extras import EXTRAS, MissingExtraError, needs_extra

ROOT = Path(__file__).resolve().parents[2]
NOT_ADAPTERS = {"dev", "bench", "docs", "all"}


def test_a_missing_library_of_the_extra_names_the_extra_and_the_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "aiokafka", None)  # importing it now fails as if absent
    with pytest.raises(MissingExtraError) as caught, needs_extra("kafka"):
        import aiokafka  # noqa: F401
    assert str(caught.value) == ("this part of invariant needs 'aiokafka', which the 'kafka' "
                                 "extra installs: pip install 'invariant[kafka]'")
    assert (caught.value.extra, caught.value.module) == ("kafka", "aiokafka")
    assert isinstance(caught.value, ImportError | ConfigurationError)
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)


def test_a_submodule_of_the_library_counts_as_the_library(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "nats.js.api", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'invariant\[nats\]'"), \
            needs_extra("nats"):
        from nats.js.api import AckPolicy  # noqa: F401


def test_any_other_missing_module_passes_through_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "orjson", None)
    with pytest.raises(ModuleNotFoundError) as caught, needs_extra("nats"):
        import orjson  # noqa: F401
    assert not isinstance(caught.value, MissingExtraError)


def test_an_unknown_extra_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="no extra named 'nast'; the extras are cli, "), \
            needs_extra("nast"):
        pass


def test_the_extras_are_those_the_distribution_declares() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert set(EXTRAS) == set(declared) - NOT_ADAPTERS


@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_every_module_named_for_an_extra_is_what_the_extra_installs(extra: str) -> None:
    # The development install has every extra: each name must be a module it brought.
    assert [m for m in EXTRAS[extra] if importlib.util.find_spec(m) is None] == []
