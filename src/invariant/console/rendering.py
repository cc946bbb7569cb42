"""The console's pages: Jinja2 templates shipped in this package (autoescaped), and the
few filters they use."""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape


@functools.cache
def environment() -> Environment:
    """The templates of ``invariant/console/templates`` (loaded once, on first use)."""
    env = Environment(loader=PackageLoader("invariant.console", "templates"),
                      autoescape=select_autoescape(default=True), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["when"] = when
    env.filters["pretty"] = pretty
    env.filters["seconds"] = seconds
    return env


def render(name: str, context: dict[str, Any]) -> str:
    return environment().get_template(name).render(context)


def when(moment: datetime | None) -> str:
    """A moment in UTC to the second (empty when there is none)."""
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def pretty(value: Any) -> str:
    """JSON data as indented text."""
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def seconds(value: float) -> str:
    """A duration in seconds, short."""
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"
