"""The ledger's column table: cells to the registry's JSON and back."""

from __future__ import annotations

from datetime import date

import pytest

from gateway.care.households import HouseholdFields
from gateway.care.ledger import LedgerUnreadable, parse_ledger, read_sheet
from gateway.care.ledger_columns import COLUMNS, column_at, column_for, read_row, write_row

TODAY = date(2026, 12, 1)


def test_every_column_has_a_unique_header_and_path():
    assert len({c.header for c in COLUMNS}) == len(COLUMNS)
    assert len({c.path for c in COLUMNS}) == len(COLUMNS)


def test_a_row_reads_into_the_registry_with_lists_split_on_semicolons():
    body, errors = read_row(
        {
            column_for("姓名"): "张桂兰",
            column_for("性别"): "女",
            column_for("是否残疾"): "是",
            column_for("紧急联系人"): "王强；王丽",
            column_for("紧急联系人电话"): "13700001111;13600001111",
            column_for("与老人关系"): ";女儿",
            column_for("风险等级"): "高",
            column_for("纳入日期"): "2025年3月1日",
            column_for("月收入(元)"): " ",
        }
    )
    assert errors == []
    assert body == {
        "elder": {"name": "张桂兰", "sex": "female"},
        "categories": {"disabled": True},
        "relatives": [
            {"name": "王强", "phone": "13700001111"},
            {"name": "王丽", "phone": "13600001111", "relation": "女儿"},
        ],
        "risk": "high",
        "registered_on": "2025-03-01",
    }


@pytest.mark.parametrize(
    ("header", "text", "msg"),
    [
        ("是否留守", "maybe", "write 是 or 否"),
        ("月收入(元)", "很多", "not a number"),
        ("纳入日期", "2025-02-30", "not a real date"),
        ("性别", "男性", "write one of 男, 女"),
    ],
)
def test_a_cell_that_cannot_be_read_is_named(header: str, text: str, msg: str):
    _, errors = read_row({column_for(header): text})
    assert [(e.column.header, e.msg) for e in errors] == [(header, msg)]


def test_headers_are_accepted_in_english_and_with_full_width_brackets():
    assert column_for("elder.citizen_id") is column_for("身份证号")
    assert column_for("县（市、区）") is column_for("县(市、区)")
    assert column_for("身份正号") is None


def test_errors_find_their_column():
    assert column_at(("elder", "citizen_id")).header == "身份证号"
    assert column_at(("relatives", 1, "phone")).header == "紧急联系人电话"
    assert column_at(("categories", "disability_certificate")).header == "残疾证号"
    assert column_at(()) is None


def test_a_registry_written_as_a_row_reads_back_the_same():
    registry = HouseholdFields.model_validate(
        {
            "elder": {"name": "刘福", "phone": "13800001111", "sex": "male"},
            "address": {"county": "某县", "township": "某镇", "village": "西村"},
            "relatives": [
                {"name": "刘军", "phone": "13600001111"},
                {"name": "刘芳", "phone": "13600002222", "relation": "侄女", "language": "en"},
            ],
            "living": {"monthly_income": 0, "monthly_benefits": 1250.5, "safe_water": False},
            "support": {"unit_type": "social_worker", "measures": "送餐"},
            "left_on": "2026-11-01",
            "left_reason": "去世",
        }
    ).model_dump(mode="json")
    row = write_row(registry)
    body, errors = read_row(dict(zip(COLUMNS, row, strict=True)))
    assert errors == []
    assert HouseholdFields.model_validate(body).model_dump(mode="json") == registry


def test_a_title_row_above_the_header_keeps_spreadsheet_row_numbers():
    sheet = [
        (1, ["西村台账"]),
        (2, ["序号", "编号", "姓名", "乡镇(街道)", "备注", "身份证号"]),
        (3, ["1", "X1", "甲", "某镇", "", ""]),
        (4, ["", "", "", "", "", ""]),
        (5, ["2", "X 2", "", "某镇", "", "11010519491231002X"]),
    ]
    ledger = parse_ledger(sheet, TODAY)
    assert [r.id for r in ledger.rows] == ["X1"]
    assert [(e.row, e.column) for e in ledger.errors] == [(5, "编号"), (5, "姓名")]


def test_unknown_and_repeated_headers_are_errors_of_the_header_row():
    ledger = parse_ledger([(1, ["姓名", "身份正号", "elder.name"])], TODAY)
    assert [(e.row, e.column, e.msg) for e in ledger.errors] == [
        (1, "身份正号", "unknown column"),
        (1, "elder.name", "the column appears twice"),
    ]


def test_an_old_xls_workbook_is_refused_with_what_to_do():
    with pytest.raises(LedgerUnreadable, match=r"save it as \.xlsx or CSV"):
        read_sheet(b"\xd0\xcf\x11\xe0" + bytes(60), "csv")


def test_a_csv_in_gb18030_is_read():
    assert read_sheet("姓名,村(社区)\r\n张桂兰,东村\r\n".encode("gb18030"), "csv") == [
        (1, ["姓名", "村(社区)"]),
        (2, ["张桂兰", "东村"]),
    ]
