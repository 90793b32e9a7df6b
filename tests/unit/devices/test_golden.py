"""Golden payloads: real device messages (each naming its source) and their canonical readings.

Each file in tests/fixtures/devices/<format>/ is one message:
    {"source": "where the payload was published",
     "topic": "homes/H001/z2m/kitchen-smoke",
     "payload": {...} | "text",
     "received_at": "2026-11-29T05:00:00+00:00",          (optional)
     "readings": [{"metric": "smoke", "value": true, "kind": "smoke_detector", "ts": "..."}],
     "problems": 0,                                         (optional: how many bad fields)
     "rejected": "invalid_json"}                            (instead of readings)
The topic is matched with the default sources, so the fixtures also pin the topic layout.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.config import default_sources
from gateway.devices import FORMATS, DeviceMessage, Rejected, normaliser_for
from gateway.ingest.sources import SourceTable

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "devices"
RECEIVED_AT = datetime(2026, 11, 29, 5, 0, tzinfo=UTC)
CASES = sorted(FIXTURES.glob("*/*.json"))


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES])
def test_golden_payload(path: Path):
    case = _load(path)
    assert case.get("source"), "every fixture names where its payload comes from"
    format_name = path.parent.name
    match = SourceTable(default_sources()).match(case["topic"])
    assert match is not None, f"{case['topic']} matches no default source"
    assert match.format == format_name
    payload = case["payload"]
    raw = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
    received_at = datetime.fromisoformat(case.get("received_at", RECEIVED_AT.isoformat()))
    message = DeviceMessage(
        match.household_id, match.device_id, match.subtopic, raw, received_at, match.zone
    )
    if "rejected" in case:
        with pytest.raises(Rejected) as caught:
            normaliser_for(format_name)(message)
        assert caught.value.code == case["rejected"]
        return
    result = normaliser_for(format_name)(message)
    got = [
        {
            "metric": r.metric.value,
            "value": r.value,
            "kind": r.kind.value if r.kind else None,
            "ts": r.ts.isoformat(),
        }
        for r in result.readings
    ]
    expected = [
        {**r, "ts": r.get("ts", received_at.isoformat()), "kind": r.get("kind")}
        for r in case["readings"]
    ]
    assert sorted(got, key=_key) == sorted(expected, key=_key)
    assert len(result.problems) == case.get("problems", 0), result.problems


def _key(reading: dict[str, Any]) -> str:
    return f"{reading['metric']}={reading['value']}"


def test_every_format_has_golden_payloads():
    with_fixtures = {p.parent.name for p in CASES}
    missing = set(FORMATS) - with_fixtures
    assert not missing, f"formats without fixtures in {FIXTURES}: {sorted(missing)}"
