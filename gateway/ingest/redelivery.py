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
from array import array
from collections.abc import Iterable
from typing import Protocol

Key = tuple[int, str]
"""(packet id, digest of topic and payload)."""

PACKET_IDS = 1 << 16
"""MQTT packet ids are 16 bits (1-65,535; 0 is never used)."""


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
        # The digest of each packet id as a number in one flat array (0: none yet), 512 kB
        # however busy the session: a dict of ids to hex strings grew to about 9 MB once a
        # busy session had used every id (an int, a 16-character string and an entry each).
        # A digest that is 0 itself (one in 2**64) would pass for no digest.
        self._by_mid = array("Q", bytes(8 * PACKET_IDS))
        self._last_batch: list[Key] = []

    def restore(self, keys: Iterable[Key]) -> None:
        """Keys saved before a restart (see `to_save`)."""
        self._remember(keys)

    def is_redelivery(self, message: Delivered) -> bool:
        """Whether the broker is sending again a message already committed."""
        if not (message.dup and message.qos > 0 and 0 < message.mid < PACKET_IDS):
            return False
        return self._by_mid[message.mid] == int(digest(message), 16)

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
        self._remember(self.keys(messages))
        self._last_batch = batch_keys

    def _remember(self, keys: Iterable[Key]) -> None:
        for mid, value in keys:
            try:
                number = int(value, 16)
            except ValueError:
                continue  # unreadable when saved: it would only have spared a duplicate
            if 0 < mid < PACKET_IDS and number < 1 << 64:
                self._by_mid[mid] = number
