"""Recognising a QoS 1 redelivery of a message this gateway has already stored.

QoS 1 is at least once: when a PUBACK is lost (the connection drops, the gateway dies between
its commit and the acknowledgement) the broker sends the message again after the reconnect,
with its original packet id and the DUP flag set (MQTT 3.1.1 §4.4). A reading with its own
timestamp is stored once by its key whatever happens; one stamped with its arrival time would
be stored again, a second time later, and counted as a second occurrence of its event.

So the gateway remembers, per packet id, a digest of the topic and payload of the last message
it committed with that id (at most 65,535 ids per session), and a message with DUP set whose id
and digest match is a redelivery: acknowledged, and otherwise ignored. The ids of the last two
batches' arrival-stamped messages are saved with each batch (the acknowledgements of the last
one, and even of the one before, may not have left when the process died), so a restart still
knows them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Protocol

Key = tuple[int, str]
"""(packet id, digest of topic and payload)."""


class Delivered(Protocol):
    """What is needed of a received message (gateway.ingest.mqtt.InboundMessage)."""

    @property
    def topic(self) -> str: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def qos(self) -> int: ...
    @property
    def mid(self) -> int: ...
    @property
    def dup(self) -> bool: ...


def digest(message: Delivered) -> str:
    """A short digest of the message's topic and payload."""
    data = hashlib.blake2b(message.topic.encode("utf-8", "surrogateescape"), digest_size=8)
    data.update(b"\0")
    data.update(message.payload)
    return data.hexdigest()


class Deliveries:
    """What this gateway's session has committed, by packet id."""

    def __init__(self) -> None:
        self._by_mid: dict[int, str] = {}
        self._last_batch: list[Key] = []

    def restore(self, keys: Iterable[Key]) -> None:
        """Keys saved before a restart (see `to_save`)."""
        for mid, value in keys:
            self._by_mid[mid] = value

    def is_redelivery(self, message: Delivered) -> bool:
        """Whether the broker is sending again a message already committed."""
        return message.dup and message.qos > 0 and self._by_mid.get(message.mid) == digest(message)

    @staticmethod
    def keys(messages: Iterable[Delivered]) -> list[Key]:
        return [(m.mid, digest(m)) for m in messages if m.qos > 0]

    def to_save(self, batch_keys: list[Key]) -> list[Key] | None:
        """The keys to save with a batch whose arrival-stamped messages have `batch_keys`:
        these and the last batch's (None: both empty, nothing to write)."""
        if not batch_keys and not self._last_batch:
            return None
        return self._last_batch + batch_keys

    def committed(self, messages: Iterable[Delivered], batch_keys: list[Key]) -> None:
        """A batch is stored: remember its messages (call only after the commit)."""
        for mid, value in self.keys(messages):
            self._by_mid[mid] = value
        self._last_batch = batch_keys
