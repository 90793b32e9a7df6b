"""The elders' ledger as a spreadsheet: read CSV or XLSX, check every row, import all or none;
write the same columns back (`gateway.care.ledger_columns`).

Rows map to households by the 编号 column (the household id). A row without one is matched
to a registered household by the elder's citizen ID number, else given a new random id: ids
appear in MQTT topics and URLs, so one is never derived from an ID number.
"""

from __future__ import annotations

import csv
import io
import secrets
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

import openpyxl
from openpyxl.utils.exceptions import InvalidFileException
from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticError

from gateway.care.households import HouseholdFields, HouseholdId
from gateway.care.ledger_columns import (
    COLUMNS,
    IGNORED_HEADERS,
    Column,
    column_at,
    column_for,
    read_row,
    write_row,
)
from gateway.care.registry import future_dates
from gateway.spreadsheets import csv_bytes, text_cells

SheetKind = Literal["csv", "xlsx"]
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
OLD_EXCEL = b"\xd0\xcf\x11\xe0"
"""The start of an .xls (OLE2) file, which openpyxl does not read."""
HEADER_SEARCH_ROWS = 10
"""Village ledgers often carry a title row or two above the headers."""

_ids = TypeAdapter(HouseholdId)


class LedgerUnreadable(Exception):
    """Not a CSV or XLSX file that can be read at all."""


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    """The row number as the spreadsheet shows it (the header is row 1 when at the top)."""
    column: str
    """The column's header as written in the file; "" for the row as a whole."""
    msg: str


@dataclass(frozen=True, slots=True)
class LedgerRow:
    row: int
    id: str | None
    household: HouseholdFields


@dataclass(frozen=True, slots=True)
class Ledger:
    rows: list[LedgerRow]
    errors: list[RowError]
    headers: dict[str, str]
    """Column path → the header the file wrote it with (for errors found later)."""

    def header(self, path: str) -> str:
        return self.headers.get(path) or next(c.header for c in COLUMNS if c.path == path)


def sheet_kind(content_type: str, data: bytes) -> SheetKind:
    """CSV or XLSX, from the media type; an XLSX is a zip file, whatever it was called."""
    media = content_type.split(";")[0].strip().lower()
    if media == XLSX_MEDIA_TYPE or data[:4] == b"PK\x03\x04":
        return "xlsx"
    return "csv"


def read_sheet(data: bytes, kind: SheetKind) -> list[tuple[int, list[str]]]:
    """The rows of a CSV (UTF-8 with or without BOM, or GB18030 as Chinese Excel writes) or
    of the first sheet of an XLSX, numbered as the spreadsheet numbers them, as text."""
    if kind == "xlsx":
        return _xlsx_rows(data)
    if data[:4] == OLD_EXCEL:
        raise LedgerUnreadable("an old Excel .xls workbook: save it as .xlsx or CSV")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            raise LedgerUnreadable("the CSV file is neither UTF-8 nor GB18030 text") from None
    try:
        return [(i, row) for i, row in enumerate(csv.reader(io.StringIO(text)), start=1)]
    except csv.Error as exc:
        raise LedgerUnreadable(f"not a CSV file: {exc}") from None


def _xlsx_rows(data: bytes) -> list[tuple[int, list[str]]]:
    try:
        with warnings.catch_warnings():
            # Features openpyxl does not read (data validation, conditional formats) are
            # announced with warnings; the cells' values are read all the same.
            warnings.simplefilter("ignore", UserWarning)
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
            try:
                sheet = book.worksheets[0]
                return [
                    (i, [_cell_text(v) for v in values])
                    for i, values in enumerate(sheet.iter_rows(values_only=True), start=1)
                ]
            finally:
                book.close()
    except (zipfile.BadZipFile, InvalidFileException, KeyError, IndexError, OSError):
        raise LedgerUnreadable("not an XLSX workbook") from None


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone number Excel stored as a number
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def parse_ledger(sheet: Sequence[tuple[int, list[str]]], today: date) -> Ledger:
    """Every row checked: the registry it holds, or every error in it."""
    header_at = next(
        (
            k
            for k, (_, cells) in enumerate(sheet[:HEADER_SEARCH_ROWS])
            if any(getattr(column_for(c), "path", None) == "elder.name" for c in cells)
        ),
        None,
    )
    if header_at is None:
        return Ledger([], [RowError(1, "", "no header row (a row with the column 姓名)")], {})
    header_row, headers = sheet[header_at]
    columns, errors = _columns(header_row, headers)
    rows: list[LedgerRow] = []
    for number, cells in sheet[header_at + 1 :]:
        if not any(c.strip() for c in cells):
            continue
        row, problems = _parse_row(number, columns, cells, today)
        errors += problems
        if row is not None:
            rows.append(row)
    errors += _duplicates(rows, columns)
    paths = {column.path: header for column, header in columns.values()}
    return Ledger(rows, sorted(errors, key=lambda e: e.row), paths)


def _columns(row: int, headers: list[str]) -> tuple[dict[int, tuple[Column, str]], list[RowError]]:
    columns: dict[int, tuple[Column, str]] = {}
    errors = []
    seen: set[Column] = set()
    for i, header in enumerate(headers):
        if not header.strip() or header.strip() in IGNORED_HEADERS:
            continue
        column = column_for(header)
        if column is None:
            errors.append(RowError(row, header, "unknown column"))
        elif column in seen:
            errors.append(RowError(row, header, "the column appears twice"))
        else:
            seen.add(column)
            columns[i] = (column, header.strip())
    return columns, errors


def _parse_row(
    number: int, columns: dict[int, tuple[Column, str]], cells: list[str], today: date
) -> tuple[LedgerRow | None, list[RowError]]:
    given = {column: cells[i] if i < len(cells) else "" for i, (column, _) in columns.items()}
    headers = {column.path: header for column, header in columns.values()}
    body, cell_errors = read_row(given)
    errors = [RowError(number, headers[e.column.path], e.msg) for e in cell_errors]
    household_id = body.pop("id", None)
    if household_id is not None:
        try:
            household_id = _ids.validate_python(household_id)
        except PydanticError:
            errors.append(
                RowError(number, headers["id"], "letters, digits, '_', '.', '-' (64 at most)")
            )
    try:
        household = HouseholdFields.model_validate(body)
    except PydanticError as exc:
        for error in exc.errors():
            errors.append(RowError(number, _header_at(error["loc"], headers), error["msg"]))
        return None, errors
    for late in future_dates(household, today):
        errors.append(RowError(number, _header_at(tuple(late["loc"]), headers), late["msg"]))
    if errors:
        return None, errors
    return LedgerRow(number, household_id, household), []


def _header_at(loc: tuple[str | int, ...], headers: dict[str, str]) -> str:
    column = column_at(loc)
    if column is None:
        return ""
    return headers.get(column.path, column.header)


def _duplicates(rows: list[LedgerRow], columns: dict[int, tuple[Column, str]]) -> list[RowError]:
    headers = {column.path: header for column, header in columns.values()}
    errors = []
    first_id: dict[str, int] = {}
    first_citizen: dict[str, int] = {}
    for r in rows:
        if r.id is not None:
            if r.id in first_id:
                errors.append(RowError(r.row, headers["id"], f"also on row {first_id[r.id]}"))
            first_id.setdefault(r.id, r.row)
        citizen_id = r.household.elder.citizen_id
        if citizen_id:
            if citizen_id in first_citizen:
                errors.append(
                    RowError(
                        r.row,
                        headers["elder.citizen_id"],
                        f"the same ID number is on row {first_citizen[citizen_id]}",
                    )
                )
            first_citizen.setdefault(citizen_id, r.row)
    return errors


def new_household_id() -> str:
    """A random id for a row without 编号 (never derived from the elder's ID number)."""
    return f"H{secrets.token_hex(5).upper()}"


def ledger_rows(registries: Iterable[dict[str, Any]]) -> list[list[str]]:
    """The header row and one row per registry (each with its "id"), in `COLUMNS` order."""
    return [[c.header for c in COLUMNS], *(write_row(r) for r in registries)]


def to_csv(rows: list[list[str]]) -> bytes:
    """UTF-8 with a BOM: Excel opens it as UTF-8 only with one."""
    return csv_bytes(rows)


def to_xlsx(rows: list[list[str]]) -> bytes:
    """One sheet; every cell text, so Excel keeps ID and phone numbers whole."""
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("台账")
    for row in rows:
        sheet.append(text_cells(sheet, row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
