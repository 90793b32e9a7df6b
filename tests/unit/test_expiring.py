"""Negative answers held for a while, in bounded memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.expiring import ExpiringKeys

T0 = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def test_a_key_is_held_for_its_time_then_asked_again():
    keys: ExpiringKeys[str] = ExpiringKeys(timedelta(seconds=30))
    keys.add("H404", T0)
    assert keys.holds("H404", T0 + timedelta(seconds=29))
    assert not keys.holds("H404", T0 + timedelta(seconds=30))
    assert not keys.holds("H405", T0)


def test_a_key_can_be_taken_back():
    keys: ExpiringKeys[str] = ExpiringKeys(timedelta(seconds=30))
    keys.add("H001", T0)
    keys.discard("H001")  # registered meanwhile
    keys.discard("H002")  # not held: harmless
    assert not keys.holds("H001", T0)


def test_a_flood_of_keys_is_forgotten_at_once_past_the_bound():
    keys: ExpiringKeys[int] = ExpiringKeys(timedelta(minutes=1), most=3)
    for n in range(4):
        keys.add(n, T0)
    assert all(keys.holds(n, T0) for n in range(4))
    keys.add(4, T0)
    assert [n for n in range(5) if keys.holds(n, T0)] == [4]
