"""The hub: one frame per interval with everything merged, only what the subscriber may see,
and a resync instead of an unbounded backlog."""

from __future__ import annotations

import asyncio
import json

from gateway.live.collector import alert_changes
from gateway.live.events import AlertChanged, Changed, ChangeKind, Resync
from gateway.live.hub import LiveHub, Visible
from gateway.live.wire import PAYLOAD_LIMIT, decode, encode


def alert(alert_id: int, household: str, change: ChangeKind, status: str = "open") -> AlertChanged:
    return AlertChanged(alert_id, household, "smoke_alarm", "critical", status, change)


async def everything() -> Visible:
    return None


async def test_changes_within_the_interval_arrive_as_one_frame_then_the_next_waits():
    hub = LiveHub(interval_s=0.2)
    with hub.subscribe(None, everything) as subscriber:
        hub.deliver(Changed(alerts=(alert(1, "H001", "opened"),)))
        first = await asyncio.wait_for(subscriber.next_frame(), 1)
        assert first == {
            "type": "changes",
            "alerts": [
                {
                    "id": 1,
                    "household_id": "H001",
                    "rule": "smoke_alarm",
                    "severity": "critical",
                    "status": "open",
                    "change": "opened",
                }
            ],
            "households": [],
            "warnings": [],
        }
        loop = asyncio.get_running_loop()
        sent = loop.time()
        hub.deliver(Changed(households=frozenset({"H001"})))
        hub.deliver(Changed(alerts=(alert(1, "H001", "escalated", "notified"),)))
        hub.deliver(Changed(alerts=(alert(1, "H001", "escalated", "escalated"),)))
        hub.deliver(Changed(households=frozenset({"H002"}), warnings=frozenset({(3, "H002")})))
        second = await asyncio.wait_for(subscriber.next_frame(), 1)
        assert loop.time() - sent >= 0.18
        assert second is not None
        assert second["households"] == ["H001", "H002"]
        assert second["warnings"] == [3]
        # The same change of one alert twice is one entry, with its latest status.
        assert [(a["id"], a["change"], a["status"]) for a in second["alerts"]] == [
            (1, "escalated", "escalated")
        ]


async def test_a_subscriber_hears_only_of_the_households_it_may_see():
    hub = LiveHub(interval_s=0)
    with hub.subscribe(frozenset({"H001"}), everything) as subscriber:
        hub.deliver(
            Changed(
                alerts=(alert(1, "H002", "opened"), alert(2, "H001", "opened")),
                households=frozenset({"H001", "H002"}),
                warnings=frozenset({(3, "H002")}),
            )
        )
        frame = await asyncio.wait_for(subscriber.next_frame(), 1)
        assert frame is not None
        assert [a["id"] for a in frame["alerts"]] == [2]
        assert frame["households"] == ["H001"]
        assert frame["warnings"] == []
        hub.deliver(Changed(households=frozenset({"H002"})))
        hub.deliver(Changed(warnings=frozenset({(3, "H002")})))
        assert not await _frame_within(subscriber, 0.1)


async def test_a_registry_change_reloads_the_scope_before_the_next_frame():
    scope = {"H001"}

    async def reload() -> Visible:
        return frozenset(scope)

    hub = LiveHub(interval_s=0)
    with hub.subscribe(frozenset(scope), reload) as subscriber:
        scope.add("H002")  # a visitor was assigned to H002, and it was announced
        hub.deliver(Changed(households=frozenset({"H002"}), registry=frozenset({"H002"})))
        frame = await asyncio.wait_for(subscriber.next_frame(), 1)
        assert frame is not None
        assert frame["households"] == ["H002"]
        hub.deliver(Changed(alerts=(alert(5, "H002", "opened"),)))
        frame = await asyncio.wait_for(subscriber.next_frame(), 1)
        assert frame is not None
        assert [a["id"] for a in frame["alerts"]] == [5]


async def test_a_registry_change_while_a_resync_is_pending_still_reloads_the_scope():
    scope = {"H001"}

    async def reload() -> Visible:
        return frozenset(scope)

    hub = LiveHub(interval_s=0)
    with hub.subscribe(frozenset(scope), reload) as subscriber:
        hub.deliver(Resync("bus reconnected"))
        scope.add("H002")
        hub.deliver(Changed(households=frozenset({"H002"}), registry=frozenset({"H002"})))
        assert await asyncio.wait_for(subscriber.next_frame(), 1) == {"type": "resync"}
        assert subscriber.visible == frozenset({"H001", "H002"})


async def test_a_subscriber_that_falls_behind_gets_a_resync_not_a_backlog():
    hub = LiveHub(interval_s=0, limit=100)
    with hub.subscribe(None, everything) as subscriber:
        for n in range(1000):
            hub.deliver(Changed(households=frozenset({f"H{n:04}"})))
        assert await asyncio.wait_for(subscriber.next_frame(), 1) == {"type": "resync"}
        hub.deliver(Changed(households=frozenset({"H0001"})))
        frame = await asyncio.wait_for(subscriber.next_frame(), 1)
        assert frame is not None
        assert frame["households"] == ["H0001"]


async def test_a_bus_resync_reaches_every_subscriber_and_closing_ends_them():
    hub = LiveHub(interval_s=0)
    with hub.subscribe(None, everything) as a, hub.subscribe(frozenset(), everything) as b:
        assert hub.count == 2
        hub.deliver(Resync("bus reconnected"))
        assert await a.next_frame() == {"type": "resync"}
        assert await b.next_frame() == {"type": "resync"}
        hub.close()
        assert await a.next_frame() is None
        with hub.subscribe(None, everything) as late:
            assert await late.next_frame() is None
    assert hub.count == 0


def test_alert_history_events_become_the_pages_kinds_of_change():
    noted = [(1, "opened"), (1, "updated"), (1, "notifying"), (2, "updated"), (2, "recurred")]
    noted += [(3, "checkin_answered"), (3, "resolved"), (3, "updated")]
    assert alert_changes(noted) == {
        1: ["opened", "escalated"],
        2: ["updated"],
        3: ["checkin", "resolved"],
    }


def test_a_large_event_is_split_into_payloads_postgresql_accepts_and_read_back_whole():
    event = Changed(
        alerts=tuple(alert(n, f"户{n:05}", "opened") for n in range(300)),
        households=frozenset(f"户{n:05}" for n in range(2000)),
        warnings=frozenset({(7, "户00001")}),
        registry=frozenset({"户00002"}),
    )
    payloads = list(encode(event, "origin-a"))
    assert len(payloads) > 1
    assert all(len(p.encode()) < PAYLOAD_LIMIT for p in payloads)
    parts = [decode(p) for p in payloads]
    assert {origin for origin, _ in parts} == {"origin-a"}
    merged = [e for _, e in parts if isinstance(e, Changed)]
    assert [a for e in merged for a in e.alerts] == list(event.alerts)
    assert frozenset().union(*(e.households for e in merged)) == event.households
    assert frozenset().union(*(e.warnings for e in merged)) == event.warnings
    assert frozenset().union(*(e.registry for e in merged)) == event.registry
    assert decode(next(encode(Resync("x"), "o"))) == ("o", Resync("x"))
    assert json.loads(payloads[0])["o"] == "origin-a"


async def _frame_within(subscriber: object, seconds: float) -> bool:
    from gateway.live.hub import Subscriber

    assert isinstance(subscriber, Subscriber)
    try:
        await asyncio.wait_for(subscriber.next_frame(), seconds)
    except TimeoutError:
        return False
    return True
