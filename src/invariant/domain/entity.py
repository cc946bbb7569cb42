"""Entities: objects with a lifecycle, equal when their identities are equal."""

from __future__ import annotations

from typing import Generic, TypeVar

IdT = TypeVar("IdT")


class Entity(Generic[IdT]):
    """An object defined by its identity. Two entities of one type with one id are equal."""

    id: IdT

    def __init__(self, id: IdT) -> None:
        self.id = id

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.id == self.id

    def __hash__(self) -> int:
        return hash((type(self), self.id))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id!s}>"
