"""Visit records in the official form's layout: a household's workbook, a month's table.

Builders are pure (records in, bytes out); `elder_info` is the one read, and it decides what is
masked: citizen ID and phone numbers are whole only for the roles that need them.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.care.services import CareService
from gateway.care.visit_labels import (
    ELDER_FIELDS,
    SERVICE_COLUMNS,
    TITLES,
    VISIT_COLUMNS,
    Language,
    heading,
    headings,
    label,
    visit_cells,
)
from gateway.privacy import mask_citizen_id, mask_phone
from gateway.spreadsheets import csv_bytes, text_cells
from gateway.store.tables import contacts, households
from gateway.store.visits import VisitRecord


@dataclass(frozen=True, slots=True)
class ElderInfo:
    """The basic information block above the form's tables."""

    household_id: str
    elder_name: str
    citizen_id: str
    elder_phone: str
    county: str
    township: str
    village: str
    address_detail: str
    emergency_contact: str
    emergency_phone: str
    visitors: str

    def masked(self) -> ElderInfo:
        """The same with ID and phone numbers masked (lists, and exports for visitors)."""
        return replace(
            self,
            citizen_id=mask_citizen_id(self.citizen_id) if self.citizen_id else "",
            elder_phone=mask_phone(self.elder_phone) if self.elder_phone else "",
            emergency_phone=mask_phone(self.emergency_phone) if self.emergency_phone else "",
        )

    def cells(self) -> dict[str, str]:
        return {key: getattr(self, key) for key in ELDER_FIELDS}


async def elder_infos(
    conn: AsyncConnection, household_ids: Iterable[str], *, whole: bool
) -> dict[str, ElderInfo]:
    """The basic information of these households; numbers whole only when `whole`."""
    ids = sorted(set(household_ids))
    people: dict[str, list[Any]] = {}
    for row in await conn.execute(
        sa.select(contacts.c.household_id, contacts.c.role, contacts.c.name, contacts.c.phone)
        .where(contacts.c.household_id.in_(ids))
        .order_by(contacts.c.household_id, contacts.c.role, contacts.c.position)
    ):
        people.setdefault(row.household_id, []).append(row)
    found: dict[str, ElderInfo] = {}
    for h in await conn.execute(sa.select(households).where(households.c.id.in_(ids))):
        relatives = [p for p in people.get(h.id, []) if p.role == "relative"]
        visitors = [p.name for p in people.get(h.id, []) if p.role == "visitor"]
        info = ElderInfo(
            household_id=h.id,
            elder_name=h.elder_name,
            citizen_id=h.citizen_id or "",
            elder_phone=h.elder_phone or "",
            county=h.county,
            township=h.township,
            village=h.village,
            address_detail=h.address_detail,
            emergency_contact=relatives[0].name if relatives else "",
            emergency_phone=relatives[0].phone if relatives else "",
            visitors="、".join(visitors),
        )
        found[h.id] = info if whole else info.masked()
    return found


def service_cells(s: CareService, language: Language) -> dict[str, str]:
    return {
        "seq": str(s.seq),
        "served_on": s.served_on.isoformat(),
        "service": s.service,
        "provider": s.provider,
        "satisfaction": label(s.satisfaction, language),
    }


def household_workbook(
    info: ElderInfo,
    visits: Sequence[VisitRecord],
    services: Sequence[CareService],
    zone: ZoneInfo,
    language: Language = "zh",
) -> bytes:
    """One elder's records as the paper form lays them out: the elder's block on top, the
    visit record table (one row per visit), then the care-service table."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = heading(TITLES, "form", language)[:31]
    width = len(VISIT_COLUMNS)
    _title(sheet, heading(TITLES, "form", language), width)
    _section(sheet, heading(TITLES, "elder", language))
    cells = info.cells()
    for key in ELDER_FIELDS:
        _append(sheet, [heading(ELDER_FIELDS, key, language), cells[key]])
    sheet.append([])
    _section(sheet, heading(TITLES, "visits", language))
    _header(sheet, headings(VISIT_COLUMNS, language))
    for v in visits:
        row = visit_cells(v, zone, language)
        _append(sheet, [row[key] for key in VISIT_COLUMNS])
    sheet.append([])
    _section(sheet, heading(TITLES, "services", language))
    _header(sheet, headings(SERVICE_COLUMNS, language))
    for s in services:
        service_row = service_cells(s, language)
        _append(sheet, [service_row[key] for key in SERVICE_COLUMNS])
    sheet.column_dimensions["A"].width = 16
    sheet.column_dimensions["B"].width = 20
    return _saved(book)


# The month's table: who the elder is, then the visit's columns.
MONTH_ELDER_COLUMNS = (
    "household_id",
    "elder_name",
    "citizen_id",
    "elder_phone",
    "county",
    "township",
    "village",
)


def month_table(
    visits: Sequence[VisitRecord],
    infos: dict[str, ElderInfo],
    zone: ZoneInfo,
    language: Language = "zh",
) -> tuple[list[str], list[list[str]]]:
    """Every visit of a month, one row each: the elder's columns, then the form's."""
    header = [heading(ELDER_FIELDS, key, language) for key in MONTH_ELDER_COLUMNS]
    header += headings(VISIT_COLUMNS, language)
    rows = []
    for v in visits:
        elder = infos[v.household_id].cells()
        cells = visit_cells(v, zone, language)
        rows.append(
            [elder[key] for key in MONTH_ELDER_COLUMNS] + [cells[key] for key in VISIT_COLUMNS]
        )
    return header, rows


def table_xlsx(title: str, header: list[str], rows: list[list[str]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title[:31]
    _header(sheet, header)
    for row in rows:
        _append(sheet, row)
    sheet.freeze_panes = "A2"
    return _saved(book)


def table_csv(header: list[str], rows: list[list[str]]) -> bytes:
    """CSV in UTF-8 with a byte-order mark, so Excel reads the Chinese right."""
    return csv_bytes([header, *(_no_formulas(row) for row in rows)])


def _no_formulas(row: list[str]) -> list[str]:
    # A note starting with = + - @ would run as a formula when the file is opened in Excel.
    return ["'" + c if c[:1] in ("=", "+", "-", "@") else c for c in row]


def _append(sheet: Worksheet, row: list[str]) -> None:
    sheet.append(text_cells(sheet, row))


def _title(sheet: Worksheet, text: str, width: int) -> None:
    sheet.append([text])
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=width)
    cell = sheet.cell(row=1, column=1)
    cell.font = Font(bold=True, size=14)
    cell.alignment = Alignment(horizontal="center")


def _section(sheet: Worksheet, text: str) -> None:
    sheet.append([text])
    sheet.cell(row=sheet.max_row, column=1).font = Font(bold=True)


def _header(sheet: Worksheet, names: list[str]) -> None:
    sheet.append(names)
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="center")


def _saved(book: Workbook) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
