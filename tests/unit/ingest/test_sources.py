from __future__ import annotations

import pytest

from gateway.config import SourceSettings, default_sources
from gateway.ingest.sources import SourceTable, TopicTemplate

TABLE = SourceTable(default_sources())


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("homes/H001/smoke-1/telemetry", ("native", "H001", "smoke-1", "telemetry")),
        ("homes/H001/btn-1/event", ("native", "H001", "btn-1", "event")),
        ("homes/H001/smoke-1/status", ("native", "H001", "smoke-1", "status")),
        ("homes/H001/z2m/kitchen-smoke", ("zigbee2mqtt", "H001", "kitchen-smoke", "")),
        ("homes/H001/z2m/sos/availability", ("zigbee2mqtt", "H001", "sos", "availability")),
        ("homes/H001/tasmota/tele/plug-1/SENSOR", ("tasmota", "H001", "plug-1", "SENSOR")),
        ("homes/H001/shelly/pm-1/status/switch:0", ("shelly", "H001", "pm-1", "status/switch:0")),
        ("homes/H001/wmbus/water-1", ("wmbusmeters", "H001", "water-1", "")),
    ],
)
def test_default_sources_find_household_device_and_format(topic, expected):
    found = TABLE.match(topic)
    assert found is not None
    assert (found.format, found.household_id, found.device_id, found.subtopic) == expected


@pytest.mark.parametrize(
    "topic",
    [
        "homes/H001/smoke-1/other",
        "homes//smoke-1/telemetry",
        "homes/H001/smoke-1/telemetry/extra",
        "elsewhere/H001/smoke-1/telemetry",
        "homes/H001/z2m/bridge/state",
    ],
)
def test_topics_outside_the_layout_match_nothing(topic):
    assert TABLE.match(topic) is None


def test_bridge_prefixes_are_not_native_device_ids():
    native = SourceTable(default_sources()[:1])
    assert native.match("homes/H001/z2m/telemetry") is None
    assert native.match("homes/H001/wmbus/telemetry") is None
    assert TABLE.match("homes/H001/z2m/telemetry").format == "zigbee2mqtt"


def test_subscriptions_are_wildcards_without_duplicates_and_can_be_shared():
    subs = TABLE.subscriptions()
    assert "homes/+/+/telemetry" in subs
    assert "homes/+/tasmota/tele/+/#" in subs
    assert len(subs) == len(set(subs))
    assert all(s.startswith("$share/gw/") for s in TABLE.subscriptions("gw"))


@pytest.mark.parametrize(
    "template",
    ["homes/{device}/telemetry", "homes/{household}/#/{device}", "homes/+/{household}/{device}"],
)
def test_invalid_templates_are_refused(template):
    with pytest.raises(ValueError, match="template"):
        TopicTemplate.parse("s", "native", template, None)


def test_sources_are_tried_in_order():
    table = SourceTable(
        [
            SourceSettings(name="first", format="native", topics=["a/{household}/{device}"]),
            SourceSettings(name="second", format="zigbee2mqtt", topics=["a/{household}/{device}"]),
        ]
    )
    found = table.match("a/H1/d1")
    assert found is not None
    assert found.source == "first"
