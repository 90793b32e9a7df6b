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


def _table(*topics: str, timezone: str | None = None) -> SourceTable:
    return SourceTable(
        [SourceSettings(name="site", format="native", topics=list(topics), timezone=timezone)]
    )


def test_literal_levels_must_match_exactly():
    table = _table("site/{household}/x/{device}/data")
    found = table.match("site/H1/x/d1/data")
    assert found is not None
    assert (found.household_id, found.device_id, found.subtopic) == ("H1", "d1", "data")
    assert table.match("site/H1/y/d1/data") is None
    assert table.match("site/H1/x/d1/Data") is None


@pytest.mark.parametrize(
    ("topic", "subtopic"),
    [
        ("homes/H001/tasmota/tele/plug-1/SENSOR", "SENSOR"),
        ("homes/H001/tasmota/tele/plug-1/a/b/c", "a/b/c"),
        ("homes/H001/tasmota/tele/plug-1", ""),
    ],
)
def test_a_hash_tail_takes_whatever_follows_as_the_subtopic(topic: str, subtopic: str):
    found = TABLE.match(topic)
    assert found is not None
    assert (found.device_id, found.subtopic) == ("plug-1", subtopic)


@pytest.mark.parametrize("reserved", ["z2m", "tasmota", "shelly", "wmbus"])
def test_bridge_prefixes_are_never_native_devices(reserved: str):
    native = SourceTable(default_sources()[:1])
    for subtopic in ("telemetry", "event", "status"):
        assert native.match(f"homes/H001/{reserved}/{subtopic}") is None


@pytest.mark.parametrize(
    "topic",
    [
        "homes/H001/smoke-1",
        "homes/H001",
        "homes",
        "",
        "homes/H001/smoke-1/telemetry/",
        "/homes/H001/smoke-1/telemetry",
    ],
)
def test_a_topic_with_the_wrong_number_of_levels_matches_nothing(topic: str):
    assert TABLE.match(topic) is None


@pytest.mark.parametrize(
    "topic",
    [
        "homes//smoke-1/telemetry",
        "homes/H001//telemetry",
        "homes/H001/tasmota/tele//SENSOR",
        "homes/H001/z2m/",
        "homes//z2m/kitchen-smoke",
    ],
)
def test_an_empty_household_or_device_level_matches_nothing(topic: str):
    assert TABLE.match(topic) is None


def test_the_sources_zone_comes_with_the_match():
    found = _table("a/{household}/{device}", timezone="Asia/Shanghai").match("a/H1/d1")
    assert found is not None
    assert found.zone is not None
    assert found.zone.key == "Asia/Shanghai"
    assert TABLE.match("homes/H001/smoke-1/telemetry").zone is None


def test_subscriptions_put_plus_for_each_placeholder_in_source_order():
    table = _table("site/{household}/x/{device}/data", "{device}/in/{household}/#")
    assert table.subscriptions() == ["site/+/x/+/data", "+/in/+/#"]


def test_the_same_filter_is_subscribed_once():
    table = SourceTable(
        [
            SourceSettings(name="a", format="native", topics=["h/{household}/{device}"]),
            SourceSettings(name="b", format="zigbee2mqtt", topics=["h/{device}/{household}"]),
        ]
    )
    assert table.subscriptions() == ["h/+/+"]


def test_a_shared_group_prefixes_every_filter():
    table = _table("homes/{household}/{device}/telemetry", "homes/{household}/{device}/event")
    assert table.subscriptions("gateways") == [
        "$share/gateways/homes/+/+/telemetry",
        "$share/gateways/homes/+/+/event",
    ]
    assert table.subscriptions(None) == table.subscriptions()


def test_a_table_for_one_format_keeps_only_its_templates():
    table = TABLE.for_format("native")
    assert table.match("homes/H001/smoke-1/telemetry") is not None
    assert table.match("homes/H001/z2m/kitchen-smoke") is None


@pytest.mark.parametrize(
    "template",
    [
        "homes/{household}/telemetry",
        "homes/{device}/{device}/telemetry",
        "homes/{household}/{household}/{device}",
        "homes/{household}-x/{device}",
        "#/{household}/{device}",
        "homes/{household}/{device}/+",
        "homes/{household}/{device}/a+b",
    ],
)
def test_templates_without_exactly_one_household_and_device_or_with_misplaced_wildcards(
    template: str,
):
    with pytest.raises(ValueError, match="template"):
        TopicTemplate.parse("s", "native", template, None)


def test_a_source_with_an_invalid_template_refuses_to_build_the_table():
    with pytest.raises(ValueError, match="template"):
        _table("homes/{household}/telemetry")


def test_a_hash_inside_a_level_is_refused():
    # BUG (gateway/ingest/sources.py, TopicTemplate.parse): only a whole-level '#' is checked,
    # so "tele#" passes and the gateway would SUBSCRIBE to "homes/+/+/tele#", an invalid filter.
    with pytest.raises(ValueError, match="template"):
        TopicTemplate.parse("s", "native", "homes/{household}/{device}/tele#", None)


def test_an_unknown_placeholder_is_refused():
    # BUG (gateway/ingest/sources.py, TopicTemplate.parse): "{kind}" is subscribed as '+' but
    # matched literally, so the source silently receives every message and matches none.
    with pytest.raises(ValueError, match="template"):
        TopicTemplate.parse("s", "native", "homes/{household}/{device}/{kind}", None)
