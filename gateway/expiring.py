"""Negative answers remembered for a while, so a flood of junk does not ask the database each
time: "no such household", "this device is over its household's quota"."""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime, timedelta
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class ExpiringKeys(Generic[K]):
    """Keys held for `ttl` from when they were added. Memory is bounded: past `most` keys,
    all are forgotten at once (the next question for each goes to the database again)."""

    def __init__(self, ttl: timedelta, *, most: int = 10_000) -> None:
        self.ttl = ttl
        self.most = most
        self._until: dict[K, datetime] = {}

    def holds(self, key: K, now: datetime) -> bool:
        until = self._until.get(key)
        return until is not None and until > now

    def add(self, key: K, now: datetime) -> None:
        if len(self._until) > self.most:
            self._until.clear()
        self._until[key] = now + self.ttl

    def discard(self, key: K) -> None:
        self._until.pop(key, None)
