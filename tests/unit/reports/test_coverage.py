"""The monthly visit rate, computed from rows: who counts, which visits count, the areas."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.reports.coverage import (
    Contact,
    Elder,
    coverage_for_month,
    in_programme,
    is_automatic,
    month_days,
    month_of,
)
from gateway.reports.response import Month

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOVEMBER = Month(2026, 11)


def elder(
    hid: str,
    village: str = "东村",
    *,
    township: str = "某镇",
    joined: date = date(2026, 1, 1),
    left: date | None = None,
) -> Elder:
    return Elder(hid, f"老人{hid}", "某县", township, village, joined, left, ("李敏",))


def at(hid: str, when: datetime, *, automatic: bool = False) -> Contact:
    return Contact(hid, when, automatic)


@pytest.mark.parametrize(
    ("joined", "left", "counted"),
    [
        (date(2026, 1, 1), None, True),
        (date(2026, 11, 30), None, True),  # joined on the last day
        (date(2026, 12, 1), None, False),  # joined after
        (date(2026, 1, 1), date(2026, 11, 1), True),  # left on the first day
        (date(2026, 1, 1), date(2026, 10, 31), False),  # left before
    ],
)
def test_who_is_in_the_programme_in_november(joined: date, left: date | None, counted: bool):
    assert in_programme(elder("X", joined=joined, left=left), *month_days(NOVEMBER)) is counted


def test_month_days_and_the_month_of_an_instant_in_the_zone():
    assert month_days(Month(2026, 12)) == (date(2026, 12, 1), date(2026, 12, 31))
    assert month_days(Month(2028, 2)) == (date(2028, 2, 1), date(2028, 2, 29))
    assert month_of(datetime(2026, 11, 30, 16, 30, tzinfo=UTC), SHANGHAI) == Month(2026, 12)
    assert month_of(datetime(2026, 11, 30, 15, 59, tzinfo=UTC), SHANGHAI) == NOVEMBER


def test_only_visits_the_gateway_filed_for_an_alert_it_resolved_itself_are_automatic():
    assert is_automatic({"automatic": True})
    assert not is_automatic({"automatic": False})
    assert not is_automatic({})
    assert not is_automatic(None)


def test_the_month_is_taken_in_the_gateway_zone_and_automatic_visits_do_not_count():
    elders = [elder("A"), elder("B"), elder("C"), elder("D")]
    contacts = [
        at("A", datetime(2026, 11, 30, 15, 30, tzinfo=UTC)),  # 23:30 on the 30th local
        at("B", datetime(2026, 11, 30, 16, 30, tzinfo=UTC)),  # 00:30 on 1 December local
        at("C", datetime(2026, 11, 8, tzinfo=UTC), automatic=True),
        at("D", datetime(2026, 10, 31, 16, 0, tzinfo=UTC)),  # 00:00 on 1 November local
    ]
    report = coverage_for_month(NOVEMBER, SHANGHAI, elders, contacts)
    assert (report.total.elders, report.total.visited, report.total.percent) == (4, 2, 50.0)
    assert [u.household_id for u in report.not_visited] == ["B", "C"]


def test_areas_at_each_level_and_the_total():
    elders = [elder(f"A{i}") for i in range(5)] + [elder(f"B{i}", "西村") for i in range(4)]
    elders.append(elder("N", "北村", township="北镇"))
    visited = ["A0", "A1", "A2", "A3", "B0", "B1", "N"]
    contacts = [at(h, datetime(2026, 11, 10, tzinfo=UTC)) for h in visited]
    # Sorted by county, township and village names.
    villages = coverage_for_month(NOVEMBER, SHANGHAI, elders, contacts, "village")
    assert [(a.village, a.elders, a.visited, a.percent) for a in villages.areas] == [
        ("北村", 1, 1, 100.0),
        ("东村", 5, 4, 80.0),
        ("西村", 4, 2, 50.0),
    ]
    townships = coverage_for_month(NOVEMBER, SHANGHAI, elders, contacts, "township")
    assert [(a.township, a.village, a.elders, a.visited, a.percent) for a in townships.areas] == [
        ("北镇", None, 1, 1, 100.0),
        ("某镇", None, 9, 6, 66.7),
    ]
    county = coverage_for_month(NOVEMBER, SHANGHAI, elders, contacts, "county")
    assert [(a.county, a.township, a.elders, a.visited) for a in county.areas] == [
        ("某县", None, 10, 7)
    ]
    assert county.total.rate == 0.7
    assert county.total.county is None


def test_no_elders_is_no_rate_rather_than_zero():
    report = coverage_for_month(NOVEMBER, SHANGHAI, [], [])
    assert (report.total.elders, report.total.rate, report.total.percent) == (0, None, None)
    assert report.areas == []


def test_homes_with_no_village_on_file_are_a_group_named_as_in_the_response_report():
    elders = [elder("A"), elder("X", ""), elder("Y", "")]
    contacts = [at("X", datetime(2026, 11, 10, tzinfo=UTC))]
    report = coverage_for_month(NOVEMBER, SHANGHAI, elders, contacts, "village")
    assert [(a.village, a.elders, a.visited) for a in report.areas] == [
        ("(no village)", 2, 1),
        ("东村", 1, 0),
    ]
