"""Fast random UUIDs for event ids (uuid.uuid4 spends most of its time in UUID.__init__)."""

from __future__ import annotations

import os
import uuid

_VERSION_MASK = ~((0xF000 << 64) | (0xC000 << 48))
_VERSION_4 = (4 << 76) | (0x8000 << 48)
_new = object.__new__
_set = object.__setattr__
_SAFE_UNKNOWN = uuid.SafeUUID.unknown


def uuid_from_bytes(raw: bytes) -> uuid.UUID:
    """``uuid.UUID(bytes=raw)`` without the slow generic constructor."""
    if len(raw) != 16:
        return uuid.UUID(bytes=raw)  # raises the usual error
    result = _new(uuid.UUID)
    _set(result, "int", int.from_bytes(raw, "big"))
    _set(result, "is_safe", _SAFE_UNKNOWN)
    return result


def new_uuid() -> uuid.UUID:
    """A random (version 4, RFC 4122 variant) UUID, equal in kind to ``uuid.uuid4()``."""
    value = (int.from_bytes(os.urandom(16), "big") & _VERSION_MASK) | _VERSION_4
    result = _new(uuid.UUID)
    _set(result, "int", value)
    _set(result, "is_safe", _SAFE_UNKNOWN)
    return result
