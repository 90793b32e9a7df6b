"""The ledger's columns, written once as data: header → registry field, converter.

A row of the official ledger is one elder. Each column names a path in `HouseholdIn`'s JSON
("elder.name"; "relatives[].phone" for one field of each item of a list, the items written in
one cell separated by ";"), and a converter between the cell's text and the JSON value. Import
and export both read this table, so an exported ledger imports unchanged.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

Json = Any


@dataclass(frozen=True, slots=True)
class Converter:
    """Cell text → JSON value (ValueError with a message that does not repeat the text), and
    back. Converters never see an empty cell: that is "not given" for every column."""

    read: Callable[[str], Json]
    write: Callable[[Json], str]


def _text(value: str) -> Json:
    return value


def _plain(value: Json) -> str:
    return "" if value is None else str(value)


TEXT = Converter(_text, _plain)

_YES = {"是", "y", "yes", "true", "1", "√"}
_NO = {"否", "n", "no", "false", "0", "×"}


def _yes_no(value: str) -> Json:
    lowered = value.lower()
    if lowered in _YES:
        return True
    if lowered in _NO:
        return False
    raise ValueError("write 是 or 否")


def _write_yes_no(value: Json) -> str:
    return "" if value is None else ("是" if value else "否")


YES_NO = Converter(_yes_no, _write_yes_no)


def _number(value: str) -> Json:
    try:
        number = float(value.replace(",", ""))
    except ValueError:
        raise ValueError("not a number") from None
    if not math.isfinite(number):
        raise ValueError("not a number")
    return number


def _write_number(value: Json) -> str:
    if value is None:
        return ""
    number = float(value)
    return str(int(number)) if number.is_integer() else str(number)


NUMBER = Converter(_number, _write_number)


def _date(value: str) -> Json:
    # Excel users write 2026-11-05, 2026/11/5 or 2026年11月5日.
    match = re.fullmatch(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?", value)
    if not match:
        raise ValueError("not a date (write 2026-11-05)")
    try:
        return date(*(int(g) for g in match.groups())).isoformat()
    except ValueError:
        raise ValueError("not a real date") from None


DATE = Converter(_date, _plain)


def lookup(labels: Mapping[str, str]) -> Converter:
    """A converter between Chinese labels and codes; the codes themselves are accepted too."""
    by_label = {label: code for code, label in labels.items()}

    def read(value: str) -> Json:
        if value in by_label:
            return by_label[value]
        if value in labels:
            return value
        raise ValueError(f"write one of {', '.join(labels.values())}")

    def write(value: Json) -> str:
        return "" if value is None else labels.get(str(value), str(value))

    return Converter(read, write)


SEX = lookup({"male": "男", "female": "女"})
RISK = lookup({"normal": "一般", "high": "高"})
UNIT_TYPE = lookup(
    {
        "party_government": "党政机关",
        "village_committee": "乡镇/村委会",
        "enterprise": "企业",
        "social_organisation": "社会组织",
        "social_worker": "社工",
        "volunteer": "志愿者",
        "other": "其他",
    }
)
LANGUAGE = lookup({"zh": "中文", "en": "English"})


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    """The header on the official ledger (Chinese)."""
    path: str
    """The registry field, also accepted as a header: "elder.name", "relatives[].phone"."""
    convert: Converter = TEXT

    @property
    def list_name(self) -> str | None:
        """ "relatives" for "relatives[].phone"; None for a single-valued column."""
        head, sep, _ = self.path.partition("[].")
        return head if sep else None


COLUMNS: tuple[Column, ...] = (
    Column("编号", "id"),
    Column("姓名", "elder.name"),
    Column("性别", "elder.sex", SEX),
    Column("身份证号", "elder.citizen_id"),
    Column("联系电话", "elder.phone"),
    Column("县(市、区)", "address.county"),
    Column("乡镇(街道)", "address.township"),
    Column("村(社区)", "address.village"),
    Column("详细地址", "address.detail"),
    Column("是否独居/空巢", "categories.living_alone", YES_NO),
    Column("是否留守", "categories.left_behind", YES_NO),
    Column("是否残疾", "categories.disabled", YES_NO),
    Column("残疾证号", "categories.disability_certificate"),
    Column("是否失能", "categories.unable_to_self_care", YES_NO),
    Column("是否计生特殊家庭", "categories.family_planning_special", YES_NO),
    Column("是否居住在户籍地", "categories.at_registered_residence", YES_NO),
    Column("家庭成员姓名", "members[].name"),
    Column("家庭成员性别", "members[].sex", SEX),
    Column("家庭成员身份证号", "members[].citizen_id"),
    Column("家庭成员关系", "members[].relation"),
    Column("家庭成员健康状况", "members[].health"),
    Column("家庭成员是否低保/特困", "members[].subsistence_support", YES_NO),
    Column("饮水是否安全", "living.safe_water", YES_NO),
    Column("用电是否安全", "living.safe_electricity", YES_NO),
    Column("住房是否安全", "living.safe_housing", YES_NO),
    Column("月收入(元)", "living.monthly_income", NUMBER),
    Column("月养老金/救助/补贴(元)", "living.monthly_benefits", NUMBER),
    Column("帮扶单位类型", "support.unit_type", UNIT_TYPE),
    Column("帮扶单位", "support.unit"),
    Column("帮扶责任人", "support.responsible"),
    Column("帮扶责任人电话", "support.responsible_phone"),
    Column("帮扶措施", "support.measures"),
    Column("紧急联系人", "relatives[].name"),
    Column("紧急联系人电话", "relatives[].phone"),
    Column("与老人关系", "relatives[].relation"),
    Column("紧急联系人语言", "relatives[].language", LANGUAGE),
    Column("探访人", "visitors[].name"),
    Column("探访人电话", "visitors[].phone"),
    Column("探访人语言", "visitors[].language", LANGUAGE),
    Column("风险等级", "risk", RISK),
    Column("纳入日期", "registered_on", DATE),
    Column("退出日期", "left_on", DATE),
    Column("退出原因", "left_reason"),
    Column("时区", "timezone"),
)

IGNORED_HEADERS = frozenset({"序号", "备注"})
"""Headers on many village ledgers that carry nothing the registry keeps."""

_ITEM_SEPARATOR = re.compile(r"\s*[;；\n]\s*")
WRITE_SEPARATOR = ";"


def column_for(header: str) -> Column | None:
    """The column a header names, by its Chinese header or its field path."""
    wanted = header.strip().replace("（", "(").replace("）", ")")
    return next((c for c in COLUMNS if wanted in (c.header, c.path)), None)


def column_at(loc: tuple[str | int, ...]) -> Column | None:
    """The column an error's location (inside the registry's JSON) belongs to."""
    parts = [p for p in loc if isinstance(p, str)]
    if not parts:
        return None
    listed = isinstance(loc[1], int) if len(loc) > 1 else False
    path = f"{parts[0]}[].{'.'.join(parts[1:])}" if listed else ".".join(parts)
    exact = next((c for c in COLUMNS if c.path == path), None)
    return exact or next((c for c in COLUMNS if c.path.startswith(parts[0])), None)


@dataclass(frozen=True, slots=True)
class CellError:
    column: Column
    msg: str


def read_row(cells: Mapping[Column, str]) -> tuple[dict[str, Json], list[CellError]]:
    """A row's cells as the registry's JSON (empty cells left out), and the cells that
    cannot be read."""
    body: dict[str, Json] = {}
    errors: list[CellError] = []
    for column, text in cells.items():
        text = text.strip()
        if not text:
            continue
        list_name = column.list_name
        items = _ITEM_SEPARATOR.split(text) if list_name else [text]
        try:
            values = [column.convert.read(item) if item else None for item in items]
        except ValueError as exc:
            errors.append(CellError(column, str(exc)))
            continue
        if list_name is None:
            _put(body, column.path.split("."), values[0])
            continue
        field = column.path.partition("[].")[2]
        entries: list[dict[str, Json]] = body.setdefault(list_name, [])
        entries.extend({} for _ in range(len(values) - len(entries)))
        for entry, value in zip(entries, values, strict=False):
            if value is not None:
                entry[field] = value
    return body, errors


def _put(body: dict[str, Json], path: list[str], value: Json) -> None:
    for part in path[:-1]:
        body = body.setdefault(part, {})
    body[path[-1]] = value


def write_row(registry: Mapping[str, Json]) -> list[str]:
    """A registry's JSON as the ledger's cells, in `COLUMNS` order."""
    return [_cell(registry, c) for c in COLUMNS]


def _cell(registry: Mapping[str, Json], column: Column) -> str:
    list_name = column.list_name
    if list_name is None:
        value: Json = registry
        for part in column.path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        return column.convert.write(value)
    field = column.path.partition("[].")[2]
    items = registry.get(list_name) or []
    cells = [column.convert.write(item.get(field)) for item in items]
    return WRITE_SEPARATOR.join(cells) if any(cells) else ""
