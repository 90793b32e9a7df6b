"""When quiet hours hold a message back, and until when (the pure part of the alert book)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from gateway.alerts.book import quiet_hours_end
from gateway.models import Severity
from gateway.rules.catalogue import QuietHoursConfig

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
NIGHT = QuietHoursConfig()  # 22:00-07:00, low severity only
LUNCH = QuietHoursConfig(start=time(13, 0), end=time(14, 0))


def local(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone)


@pytest.mark.parametrize(
    ("config", "severity", "now", "expected"),
    [
        # Across local midnight: the end is tomorrow's 07:00 before midnight, today's after.
        (NIGHT, Severity.LOW, local(SHANGHAI, 2026, 11, 29, 23, 30), (2026, 11, 30, 7, 0)),
        (NIGHT, Severity.LOW, local(SHANGHAI, 2026, 11, 29, 22, 0), (2026, 11, 30, 7, 0)),
        (NIGHT, Severity.LOW, local(SHANGHAI, 2026, 11, 30, 2, 0), (2026, 11, 30, 7, 0)),
        (NIGHT, Severity.LOW, local(SHANGHAI, 2026, 11, 30, 6, 59, 59), (2026, 11, 30, 7, 0)),
        (NIGHT, Severity.LOW, local(SHANGHAI, 2026, 11, 30, 7, 0), None),
        (NIGHT, Severity.LOW, local(SHANGHAI, 2026, 11, 29, 21, 59), None),
        (NIGHT, Severity.LOW, local(SHANGHAI, 2026, 11, 29, 12, 0), None),
        # Only the configured severities wait.
        (NIGHT, Severity.MEDIUM, local(SHANGHAI, 2026, 11, 29, 23, 30), None),
        (NIGHT, Severity.HIGH, local(SHANGHAI, 2026, 11, 29, 23, 30), None),
        (NIGHT, Severity.CRITICAL, local(SHANGHAI, 2026, 11, 29, 23, 30), None),
        (
            QuietHoursConfig(severities=frozenset({Severity.LOW, Severity.MEDIUM})),
            Severity.MEDIUM,
            local(SHANGHAI, 2026, 11, 29, 23, 30),
            (2026, 11, 30, 7, 0),
        ),
        (
            QuietHoursConfig(enabled=False),
            Severity.LOW,
            local(SHANGHAI, 2026, 11, 29, 23, 30),
            None,
        ),
        (
            QuietHoursConfig(start=time(7, 0), end=time(7, 0)),
            Severity.LOW,
            local(SHANGHAI, 2026, 11, 29, 23, 30),
            None,
        ),
        # A window within one day.
        (LUNCH, Severity.LOW, local(SHANGHAI, 2026, 11, 29, 13, 30), (2026, 11, 29, 14, 0)),
        (LUNCH, Severity.LOW, local(SHANGHAI, 2026, 11, 29, 13, 0), (2026, 11, 29, 14, 0)),
        (LUNCH, Severity.LOW, local(SHANGHAI, 2026, 11, 29, 14, 0), None),
        (LUNCH, Severity.LOW, local(SHANGHAI, 2026, 11, 29, 12, 59), None),
        (LUNCH, Severity.LOW, local(SHANGHAI, 2026, 11, 29, 23, 30), None),
        # West of UTC the local night straddles a UTC date change.
        (NIGHT, Severity.LOW, local(NEW_YORK, 2026, 11, 29, 23, 30), (2026, 11, 30, 7, 0)),
        # The night summer time starts: 07:00 is on the new offset.
        (NIGHT, Severity.LOW, local(BERLIN, 2026, 3, 28, 23, 30), (2026, 3, 29, 7, 0)),
    ],
)
def test_quiet_hours_end_is_the_next_local_end(
    config: QuietHoursConfig,
    severity: Severity,
    now: datetime,
    expected: tuple[int, ...] | None,
):
    zone = now.tzinfo
    assert isinstance(zone, ZoneInfo)
    until = quiet_hours_end(config, severity, now.astimezone(UTC), zone)
    if expected is None:
        assert until is None
    else:
        assert until is not None
        assert until.tzinfo is UTC
        assert until == datetime(*expected, tzinfo=zone)
        assert until.astimezone(zone).time() == config.end


def test_shanghai_morning_in_utc():
    until = quiet_hours_end(
        NIGHT, Severity.LOW, datetime(2026, 11, 29, 15, 30, tzinfo=UTC), SHANGHAI
    )
    assert until == datetime(2026, 11, 29, 23, 0, tzinfo=UTC)


def test_berlin_morning_after_the_clocks_go_forward_is_an_hour_earlier_in_utc():
    before = quiet_hours_end(NIGHT, Severity.LOW, local(BERLIN, 2026, 3, 27, 23, 30), BERLIN)
    after = quiet_hours_end(NIGHT, Severity.LOW, local(BERLIN, 2026, 3, 28, 23, 30), BERLIN)
    assert before == datetime(2026, 3, 28, 6, 0, tzinfo=UTC)
    assert after == datetime(2026, 3, 29, 5, 0, tzinfo=UTC)
