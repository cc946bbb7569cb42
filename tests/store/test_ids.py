"""Event ids are proper time-ordered version-7 UUIDs."""

from __future__ import annotations

import uuid

from invariant.store.ids import new_uuid


def test_new_ids_are_version_7_rfc_uuids_that_round_trip() -> None:
    ids = [new_uuid() for _ in range(2000)]
    assert len(set(ids)) == 2000
    for value in ids[:200]:
        assert value.version == 7
        assert value.variant == uuid.RFC_4122
        assert uuid.UUID(str(value)) == value
        assert uuid.UUID(bytes=value.bytes) == value
        assert hash(value) == hash(uuid.UUID(str(value)))


def test_new_ids_carry_the_time_and_sort_by_it() -> None:
    import time

    before = time.time_ns() // 1_000_000
    first = new_uuid()
    time.sleep(0.002)
    second = new_uuid()
    after = time.time_ns() // 1_000_000
    assert before <= first.int >> 80 < second.int >> 80 <= after
    assert first < second and str(first) < str(second) and first.bytes < second.bytes
    # the 74 bits after the time are random: ids of one millisecond differ there
    same_ms = [new_uuid() for _ in range(200)]
    assert len({u.int & ((1 << 76) - 1) for u in same_ms}) == 200


def test_uuids_from_stored_bytes_equal_the_standard_ones() -> None:
    from invariant.store.ids import uuid_from_bytes

    for _ in range(100):
        value = uuid.uuid4()
        assert uuid_from_bytes(value.bytes) == value
        assert str(uuid_from_bytes(value.bytes)) == str(value)


def test_microsecond_timestamps_round_trip_exactly() -> None:
    from datetime import UTC, datetime, timedelta

    from invariant.clock import from_micros, to_micros

    start = datetime(2026, 3, 29, 0, 59, 59, 999_999, tzinfo=UTC)
    for step in range(0, 5000, 37):
        moment = start + timedelta(microseconds=step * 1013)
        assert from_micros(to_micros(moment)) == moment
        assert from_micros(to_micros(moment)) == moment  # the remembered value too
    assert from_micros(0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert from_micros(to_micros(start)).tzinfo is UTC


def test_the_fast_microsecond_clock_agrees_with_utc_now() -> None:
    from datetime import UTC, datetime

    from invariant.clock import micros_of, to_micros, utc_now

    now = micros_of(utc_now)
    before = to_micros(datetime.now(UTC))
    value = now()
    after = to_micros(datetime.now(UTC))
    assert before <= value <= after
    fixed = datetime(2026, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC)
    assert micros_of(lambda: fixed)() == to_micros(fixed)  # any other clock is asked
