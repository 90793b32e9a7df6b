"""One visit record as a printable page in the form's layout, on one A4 sheet."""

from __future__ import annotations

from itertools import zip_longest
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape

from gateway.care.visit_export import ElderInfo
from gateway.care.visit_labels import (
    ELDER_FIELDS,
    TITLES,
    VISIT_COLUMNS,
    Language,
    heading,
    visit_cells,
)
from gateway.store.visits import VisitRecord

# Free text gets a whole row; the boxes with a word or two share a row three by three.
LONG_FIELDS = (
    "illness",
    "health",
    "living_security",
    "living_environment",
    "hygiene",
    "family_care",
    "service_needs",
    "care_suggestions",
    "special_circumstances",
    "summary",
)
SIGNATURE_FIELDS = ("visitor", "entered_by", "elder")
ELDER_BLOCK = (
    "elder_name",
    "citizen_id",
    "elder_phone",
    "household_id",
    "county",
    "township",
    "village",
    "address_detail",
    "emergency_contact",
    "emergency_phone",
    "visitors",
)

Pair = tuple[str, str]


def _three_by_three(pairs: list[Pair]) -> list[list[Pair]]:
    rows = zip_longest(pairs[0::3], pairs[1::3], pairs[2::3], fillvalue=("", ""))
    return [list(row) for row in rows]


def render_visit_page(
    info: ElderInfo, visit: VisitRecord, zone: ZoneInfo, language: Language = "zh"
) -> str:
    """The page's HTML (autoescaped: every value is someone's typing)."""
    env = Environment(
        loader=PackageLoader("gateway.care", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    cells = visit_cells(visit, zone, language)
    elder = info.cells()
    short = [k for k in VISIT_COLUMNS if k not in LONG_FIELDS and k not in SIGNATURE_FIELDS]
    return env.get_template("visit_record.html").render(
        language=language,
        title=heading(TITLES, "form", language),
        elder_title=heading(TITLES, "elder", language),
        visit_title=heading(TITLES, "visits", language),
        elder_name=info.elder_name,
        seq_label=cells["seq"],
        elder_rows=_three_by_three(
            [(heading(ELDER_FIELDS, k, language), elder[k]) for k in ELDER_BLOCK]
        ),
        short_rows=_three_by_three(
            [(heading(VISIT_COLUMNS, k, language), cells[k]) for k in short]
        ),
        long_rows=[(heading(VISIT_COLUMNS, k, language), cells[k]) for k in LONG_FIELDS],
        signature_rows=_three_by_three(
            [(heading(VISIT_COLUMNS, k, language), cells[k]) for k in SIGNATURE_FIELDS]
        ),
    )
