"""Event ids are proper random version-4 UUIDs."""

from __future__ import annotations

import uuid

from invariant.store.ids import new_uuid


def test_new_ids_are_version_4_rfc_4122_uuids_that_round_trip() -> None:
    ids = [new_uuid() for _ in range(2000)]
    assert len(set(ids)) == 2000
    for value in ids[:200]:
        assert value.version == 4
        assert value.variant == uuid.RFC_4122
        assert uuid.UUID(str(value)) == value
        assert uuid.UUID(bytes=value.bytes) == value
        assert hash(value) == hash(uuid.UUID(str(value)))
