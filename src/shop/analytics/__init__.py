"""The analytics context (to be built)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shop.platform.module import Module

if TYPE_CHECKING:
    from shop.platform.runtime import Shop


def module(shop: Shop) -> Module:
    return Module(name="analytics")
