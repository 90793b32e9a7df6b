"""The two lanes: alarms first, a topic's order kept, a household's flood of alarms not first."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.ingest.lanes import MAX_ALARM_STREAK, AlarmBudget, Lane, Lanes
from gateway.ingest.mqtt import InboundMessage

AT = datetime(2026, 11, 29, 5, 0, tzinfo=UTC)
SMOKE = b'{"smoke": true}'
QUIET = b'{"smoke": false}'
POWER = b'{"power_w": 10}'


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def message(topic: str, payload: bytes, mid: int) -> InboundMessage:
    return InboundMessage(topic, payload, 1, mid, False, AT)


def lanes(capacity: int = 1000, per_s: float = 0.2, burst: int = 3) -> tuple[Lanes, Ticks]:
    ticks = Ticks()
    budget = AlarmBudget(per_s, burst, lambda topic: topic.split("/")[1], now=ticks)
    return Lanes(capacity, budget), ticks


def fill(into: Lanes, *messages: InboundMessage) -> None:
    for m in messages:
        into.put(m)


def drain(into: Lanes, max_batch: int = 100) -> list[tuple[Lane, list[int]]]:
    out = []
    while (taken := into.take(max_batch)) is not None:
        out.append((taken[0], [m.mid for m in taken[1]]))
    return out


def test_an_alarm_goes_ahead_of_the_backlog_with_its_own_topics_older_messages():
    buffer, _ = lanes()
    backlog = [message(f"homes/H{n % 7}/power-1/telemetry", POWER, n) for n in range(300)]
    fill(buffer, *backlog[:100])
    fill(buffer, message("homes/HX/smoke-1/telemetry", QUIET, 1000))
    fill(buffer, *backlog[100:])
    fill(buffer, message("homes/HX/smoke-1/telemetry", SMOKE, 1001))
    taken = drain(buffer)
    assert taken[0] == (Lane.ALARM, [1000, 1001])
    assert taken[1:] == [
        (Lane.ORDINARY, list(range(100))),
        (Lane.ORDINARY, list(range(100, 200))),
        (Lane.ORDINARY, list(range(200, 300))),
    ]
    assert buffer.depth(Lane.ORDINARY) == buffer.depth(Lane.ALARM) == 0


def test_messages_after_an_alarm_on_its_topic_come_along_in_order():
    buffer, _ = lanes()
    topic = "homes/HX/leak-1/telemetry"
    fill(buffer, message("homes/H1/power-1/telemetry", POWER, 1))
    fill(buffer, message(topic, b'{"water_leak": true}', 2))
    fill(buffer, message(topic, b'{"water_leak": false}', 3))
    fill(buffer, message(topic, b'{"water_leak": true}', 4))
    assert drain(buffer) == [(Lane.ALARM, [2, 3, 4]), (Lane.ORDINARY, [1])]


def test_a_household_over_its_budget_queues_its_alarms_in_turn():
    buffer, ticks = lanes(burst=3, per_s=0.2)
    flood = [message("homes/HBAD/smoke-1/telemetry", SMOKE, n) for n in range(10)]
    fill(buffer, message("homes/H1/power-1/telemetry", POWER, 100), *flood)
    ticks.now = 5.0  # one more token
    fill(buffer, message("homes/HGOOD/smoke-1/telemetry", SMOKE, 200))
    fill(buffer, message("homes/HBAD/smoke-1/telemetry", SMOKE, 10))
    taken = drain(buffer)
    # The first three are prioritised; they bring along nothing (none of their topic waited
    # when they did) - but the rest of the flood queued in the ordinary lane meanwhile does.
    assert taken[0][0] is Lane.ALARM
    assert 200 in taken[0][1]
    assert buffer.prioritised == 5
    assert buffer.over_budget == 7
    stored = [mid for _, mids in taken for mid in mids]
    assert sorted(stored) == sorted([100, 200, *range(11)])
    assert [mid for mid in stored if mid < 100] == list(range(11))  # the device's order


def test_a_stream_of_alarm_batches_lets_an_ordinary_batch_through():
    buffer, _ = lanes(burst=100)
    fill(buffer, message("homes/H1/power-1/telemetry", POWER, 0))
    fill(buffer, *(message(f"homes/H{n}/btn-1/event", b'{"event": "sos"}', n) for n in range(1, 9)))
    lanes_taken = [lane for lane, _ in drain(buffer, max_batch=1)]
    assert lanes_taken[: MAX_ALARM_STREAK + 1] == [Lane.ALARM] * MAX_ALARM_STREAK + [Lane.ORDINARY]
    assert lanes_taken[MAX_ALARM_STREAK + 1 :] == [Lane.ALARM] * (8 - MAX_ALARM_STREAK)


def test_a_full_ordinary_lane_says_so_until_taken_from_but_lets_alarms_in():
    buffer, _ = lanes(capacity=2)
    fill(buffer, message("homes/H1/power-1/telemetry", POWER, 0))
    assert not buffer.full()
    fill(buffer, message("homes/H1/power-1/telemetry", POWER, 1))
    assert buffer.full(), "the connection stops reading the socket"
    assert buffer.take(1) == (Lane.ORDINARY, [message("homes/H1/power-1/telemetry", POWER, 0)])
    assert not buffer.full()
    fill(buffer, message("homes/H1/power-1/telemetry", POWER, 2))
    # Past the capacity, and still taken: an alarm never waits for room.
    fill(buffer, message("homes/H2/smoke-1/telemetry", SMOKE, 9))
    assert buffer.depth(Lane.ALARM) == 1
    assert buffer.depth(Lane.ORDINARY) == 2
    assert buffer.full()


def test_the_oldest_ordinary_message_is_known_for_the_metrics():
    buffer, _ = lanes()
    assert buffer.oldest() is None
    fill(buffer, message("homes/H1/power-1/telemetry", POWER, 0))
    assert buffer.oldest() == AT
