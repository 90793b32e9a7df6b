"""Rows for the spreadsheets people download: CSV that Excel reads as UTF-8, and XLSX cells
that stay text."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from openpyxl.cell import WriteOnlyCell
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet.worksheet import Worksheet


def csv_bytes(rows: Iterable[Sequence[object]]) -> bytes:
    """CSV in UTF-8 with a byte-order mark: Excel in Chinese reads it as UTF-8 only with one."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode("utf-8-sig")


def text_cells(sheet: Worksheet | WriteOnlyWorksheet, row: Iterable[object]) -> list[object]:
    """`row`, ready for `sheet.append`, with every string kept as text.

    openpyxl stores a string starting with = as a formula, which Excel would run (an address
    or a note typed as =HYPERLINK(...)). Those cells are made as text; the rest pass as they
    are, so appending stays linear (reading a row back makes openpyxl scan the whole sheet).
    """
    return [_text(sheet, v) if isinstance(v, str) and v.startswith("=") else v for v in row]


def _text(sheet: Worksheet | WriteOnlyWorksheet, value: str) -> object:
    cell = WriteOnlyCell(sheet, value=value)  # `append` gives it its place
    cell.data_type = "s"
    return cell
