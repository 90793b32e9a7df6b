"""Recognising the broker sending again a message already stored (the pure bookkeeping)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.ingest.redelivery import Deliveries


@dataclass(frozen=True)
class Sent:
    topic: str
    payload: bytes
    mid: int
    dup: bool = False
    qos: int = 1


SOS = Sent("homes/H001/btn-1/event", b'{"event":"sos"}', mid=7)
AGAIN = Sent(SOS.topic, SOS.payload, mid=7, dup=True)


def test_a_message_sent_again_after_its_commit_is_a_redelivery():
    deliveries = Deliveries()
    assert not deliveries.is_redelivery(AGAIN)  # not stored yet: process it
    deliveries.committed([SOS], [])
    assert deliveries.is_redelivery(AGAIN)


def test_a_new_message_is_never_a_redelivery_even_with_the_same_payload():
    deliveries = Deliveries()
    deliveries.committed([SOS], [])
    assert not deliveries.is_redelivery(Sent(SOS.topic, SOS.payload, mid=7))  # DUP not set
    assert not deliveries.is_redelivery(Sent(SOS.topic, SOS.payload, mid=8, dup=True))
    assert not deliveries.is_redelivery(Sent(SOS.topic, b'{"event":"cancel"}', mid=7, dup=True))


def test_a_packet_id_used_again_remembers_the_newest_message():
    deliveries = Deliveries()
    deliveries.committed([SOS], [])
    cancel = Sent(SOS.topic, b'{"event":"cancel"}', mid=7)
    deliveries.committed([cancel], [])
    assert not deliveries.is_redelivery(AGAIN)
    assert deliveries.is_redelivery(Sent(cancel.topic, cancel.payload, mid=7, dup=True))


def test_qos_0_is_never_acknowledged_nor_redelivered():
    deliveries = Deliveries()
    deliveries.committed([Sent("t", b"x", mid=0, qos=0)], [])
    assert not deliveries.is_redelivery(Sent("t", b"x", mid=0, dup=True, qos=0))


def test_the_keys_saved_are_the_last_two_batches_and_none_when_there_is_nothing():
    deliveries = Deliveries()
    assert deliveries.to_save([]) is None
    first = Deliveries.keys([SOS])
    assert deliveries.to_save(first) == first
    deliveries.committed([SOS], first)
    second = Deliveries.keys([Sent("t", b"x", mid=9)])
    assert deliveries.to_save(second) == first + second
    deliveries.committed([], second)
    deliveries.committed([], [])
    assert deliveries.to_save([]) is None


def test_keys_restored_after_a_restart_recognise_the_redelivery():
    before = Deliveries()
    saved = before.to_save(Deliveries.keys([SOS]))
    assert saved is not None
    after = Deliveries()
    after.restore(saved)
    assert after.is_redelivery(AGAIN)


def test_every_packet_id_of_a_busy_session_is_remembered_at_once():
    deliveries = Deliveries()
    sent = [Sent(f"homes/H{mid:05d}/water-1/telemetry", b"{}", mid=mid) for mid in range(1, 65_536)]
    deliveries.committed(sent, [])
    for message in (sent[0], sent[30_000], sent[-1]):
        assert deliveries.is_redelivery(Sent(message.topic, b"{}", mid=message.mid, dup=True))
    assert not deliveries.is_redelivery(Sent(sent[0].topic, b"{}", mid=2, dup=True))


def test_saved_keys_that_cannot_be_read_are_left_out():
    deliveries = Deliveries()
    good = Deliveries.keys([SOS])
    deliveries.restore([(3, "not hex"), (70_000, good[0][1]), (5, "f" * 40), *good])
    assert deliveries.is_redelivery(AGAIN)
    assert not deliveries.is_redelivery(Sent(SOS.topic, SOS.payload, mid=3, dup=True))
