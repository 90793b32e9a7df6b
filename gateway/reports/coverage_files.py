"""The coverage report as files for the civil-affairs bureau: CSV and XLSX, Chinese headers."""

from __future__ import annotations

import io
from typing import Literal

from openpyxl import Workbook
from openpyxl.utils import get_column_letter
from rich.table import Table

from gateway.reports.coverage import LEVELS, CoverageReport
from gateway.spreadsheets import csv_bytes, text_cells

FileFormat = Literal["csv", "xlsx"]
MEDIA_TYPES: dict[FileFormat, str] = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
AREA_HEADERS = ("县（市、区）", "乡镇（街道）", "村（社区）")
COUNT_HEADERS = ("老人数", "本月已探访", "探访率（%）")
UNVISITED_HEADERS = ("户号", "老人姓名", "县（市、区）", "乡镇（街道）", "村（社区）", "探访人")
TOTAL = "合计"
Cell = str | int | float | None


def _text(value: str) -> str:
    # A name starting with = + - @ would be a formula to a spreadsheet: keep it text.
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


def table_rows(report: CoverageReport) -> list[list[Cell]]:
    """The table: a header, a row per area, the total row last."""
    depth = LEVELS.index(report.level) + 1
    rows: list[list[Cell]] = [[*AREA_HEADERS[:depth], *COUNT_HEADERS]]
    for area in report.areas:
        names = [area.county, area.township, area.village][:depth]
        rows.append([*(_text(n or "") for n in names), area.elders, area.visited, area.percent])
    total = report.total
    rows.append([TOTAL, *[""] * (depth - 1), total.elders, total.visited, total.percent])
    return rows


def unvisited_rows(report: CoverageReport) -> list[list[Cell]]:
    """The elders not yet visited: a header and a row each (visitors' names, no numbers)."""
    rows: list[list[Cell]] = [list(UNVISITED_HEADERS)]
    rows.extend(
        [
            _text(u.household_id),
            _text(u.elder_name),
            _text(u.county),
            _text(u.township),
            _text(u.village),
            _text("、".join(u.visitors)),
        ]
        for u in report.not_visited
    )
    return rows


def coverage_csv(report: CoverageReport) -> bytes:
    """The table as CSV in UTF-8 with a byte-order mark (so Excel in Chinese reads it right)."""
    return csv_bytes(["" if c is None else c for c in row] for row in table_rows(report))


def coverage_xlsx(report: CoverageReport) -> bytes:
    """A workbook: the table, then a sheet of the elders not yet visited."""
    book = Workbook()
    table = book.active
    assert table is not None
    table.title = f"探访率 {report.month}"
    for row in table_rows(report):
        table.append(text_cells(table, row))
    unvisited = book.create_sheet("未探访老人")
    for row in unvisited_rows(report):
        unvisited.append(text_cells(unvisited, row))
    for sheet in (table, unvisited):
        sheet.freeze_panes = "A2"
        for column in range(1, sheet.max_column + 1):
            sheet.column_dimensions[get_column_letter(column)].width = 16
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def coverage_file(report: CoverageReport, file_format: FileFormat) -> bytes:
    return coverage_csv(report) if file_format == "csv" else coverage_xlsx(report)


def file_name(report: CoverageReport, file_format: FileFormat) -> str:
    """An ASCII name: coverage-2026-11-village.xlsx."""
    return f"coverage-{report.month}-{report.level}.{file_format}"


def coverage_table(report: CoverageReport) -> Table:
    """The table for a terminal (rich), the same rows as the files."""
    header, *rows = table_rows(report)
    table = Table(title=f"探访率 {report.month}（{report.zone}）", show_footer=False)
    for i, name in enumerate(header):
        table.add_column(str(name), justify="right" if i >= len(header) - 3 else "left")
    for i, row in enumerate(rows):
        table.add_row(*("" if c is None else str(c) for c in row), end_section=i == len(rows) - 2)
    return table


def unvisited_table(report: CoverageReport) -> Table:
    """The elders not yet visited, for a terminal."""
    header, *rows = unvisited_rows(report)
    table = Table(title=f"未探访老人（{len(rows)}位）")
    for name in header:
        table.add_column(str(name))
    for row in rows:
        table.add_row(*("" if c is None else str(c) for c in row))
    return table
