"""The visit form's findings as people read them, and what the form refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from gateway.care.visit_export import table_csv
from gateway.care.visit_form import VisitForm, is_future
from gateway.care.visit_labels import VISIT_COLUMNS, visit_cells
from gateway.store.visits import VisitMethod, VisitRecord

SHANGHAI = ZoneInfo("Asia/Shanghai")
AT = datetime(2026, 11, 30, 16, 30, tzinfo=UTC)  # 1 December 00:30 in Shanghai


def record(form: dict[str, Any], summary: str = "") -> VisitRecord:
    return VisitRecord(
        id=7,
        household_id="H001",
        alert_id=None,
        method=VisitMethod.VIDEO,
        visited_at=AT,
        visitor="李敏",
        summary=summary,
        details={"form": form},
        seq=3,
        created_by="王芳",
    )


def test_every_column_has_a_cell_and_the_time_is_local():
    cells = visit_cells(record({}), SHANGHAI, "zh")
    assert list(cells) == list(VISIT_COLUMNS)
    assert (cells["seq"], cells["visited_at"], cells["method"]) == ("3", "2026-12-01 00:30", "视频")
    assert (cells["visitor"], cells["entered_by"]) == ("李敏", "王芳")
    assert cells["gas"] == ""  # not recorded: an empty box, not a guess


@pytest.mark.parametrize(
    ("change", "zh", "en"),
    [(0, "无变化", "no change"), (2, "增加2人", "+2"), (-1, "减少1人", "−1")],
)
def test_household_size_changes_read_as_on_the_form(change: int, zh: str, en: str):
    form = {"household_size_change": change}
    assert visit_cells(record(form), SHANGHAI, "zh")["household_size_change"] == zh
    assert visit_cells(record(form), SHANGHAI, "en")["household_size_change"] == en


def test_findings_with_their_notes_in_both_languages():
    form = {
        "illness": "serious",
        "illness_name": "高血压",
        "fire": "fairly_safe",
        "living_security": "basic",
        "living_security_note": "低保",
        "elder_confirmed": False,
    }
    zh = visit_cells(record(form), SHANGHAI, "zh")
    en = visit_cells(record(form), SHANGHAI, "en")
    assert (zh["illness"], zh["fire"], zh["living_security"]) == (
        "严重：高血压",
        "较安全",
        "基本有保障（低保）",
    )
    assert (en["illness"], en["fire"], en["elder"]) == (
        "serious: 高血压",
        "fairly safe",
        "not confirmed",
    )


def test_numbers_typed_into_notes_are_masked():
    cells = visit_cells(
        record({"care_suggestions": "联系儿子 13912345678"}, "回电13800000000"), SHANGHAI, "zh"
    )
    assert cells["care_suggestions"] == "联系儿子 139****5678"
    assert cells["summary"] == "回电138****0000"


@pytest.mark.parametrize(
    "form",
    [
        {"gas": "explosive"},
        {"noise": "loud"},
        {"illness": "serious"},
        {"illness": "improved", "illness_name": "感冒"},
        {"household_size_change": 21},
        {"elder_confirmed": "maybe"},
    ],
)
def test_the_form_refuses_what_it_does_not_know(form: dict[str, Any]):
    with pytest.raises(ValidationError):
        VisitForm.model_validate(form)


def test_a_clock_a_few_minutes_ahead_is_not_the_future():
    now = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    assert not is_future(now + timedelta(minutes=4), now)
    assert is_future(now + timedelta(minutes=6), now)
    assert not is_future(now - timedelta(days=30), now)


def test_csv_cells_cannot_run_as_formulas():
    content = table_csv(["a", "b"], [["=1+1", "-2"], ["ok", "@SUM(A1)"]]).decode("utf-8-sig")
    assert content.splitlines() == ["a,b", "'=1+1,'-2", "ok,'@SUM(A1)"]
