"""The report's Excel workbook (openpyxl): the summary, every KPI table, and the tickets.

One table per sheet with its header in the first row, so ``pandas.read_excel`` reads any
sheet back as it is shown. Code columns keep the code next to its label (a filter on a
code survives a change of language). Written in openpyxl's write-only mode: the detail
sheet may hold a hundred thousand rows.

Cell text is data, never a formula: a ticket subject starting with ``=`` is written as a
string cell, and characters XML cannot carry are dropped instead of failing the report.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from incident_ops.reports.kpis import PeriodKpis
from incident_ops.reports.labels import METRICS, TABLES, Labels

# Characters Excel's XML cannot hold (openpyxl refuses them): C0 controls but tab/CR/LF.
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_SHEET_UNSAFE = re.compile(r"[\[\]:*?/\\]")
# Codes in the detail sheet and the vocabulary section their labels come from.
DETAIL_CODES = {"status": "statuses", "priority": "priorities", "impact": "impacts",
                "source": "sources", "category": "categories", "system": "systems",
                "resolver_role": "resolver_roles", "close_code": "close_codes"}


def sheet_title(text: str, taken: set[str]) -> str:
    """A valid, unique sheet name (31 characters, none of ``[]:*?/\\``)."""
    base = _SHEET_UNSAFE.sub(" ", text).strip()[:31] or "Sheet"
    title, n = base, 2
    while title.lower() in taken:
        suffix = f" ({n})"
        title, n = base[:31 - len(suffix)] + suffix, n + 1
    taken.add(title.lower())
    return title


def build_workbook(kpis: PeriodKpis, labels: Labels, detail: pd.DataFrame,
                   detail_total: int) -> bytes:
    """The workbook as bytes (``.xlsx``)."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    taken: set[str] = set()
    _sheet(wb, sheet_title(labels.text("summary_sheet"), taken), *_summary(kpis, labels))
    for name in TABLES:
        if name in kpis.tables:
            header, rows = _table(kpis.tables[name], name, labels)
            _sheet(wb, sheet_title(labels.table(name), taken), header, rows)
    detail_header, detail_rows = _detail(detail, labels)
    ws = _sheet(wb, sheet_title(labels.text("detail_sheet"), taken), detail_header,
                detail_rows)
    notes = [labels.text("local_time", tz=kpis.period.tz)]
    if detail_total > len(detail):
        notes.append(labels.text("detail_capped", n=len(detail), total=detail_total))
    for note in notes:  # after the table, so the header stays in row 1
        ws.append([])
        ws.append([note])
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def _summary(kpis: PeriodKpis, labels: Labels) -> tuple[list[str], list[list[Any]]]:
    header = [labels.column("metric"), labels.column("code"), labels.column("value"),
              labels.column("previous"), labels.column("delta")]
    rows = [[labels.metric(key), key, kpis.headline.get(key),
             kpis.previous_headline.get(key), kpis.delta(key)] for key in METRICS]
    return header, rows


def _table(table: pd.DataFrame, name: str, labels: Labels) -> tuple[list[str], list[list[Any]]]:
    columns = list(table.columns)
    section = labels.code_section(name)
    with_label = "code" in columns
    header: list[str] = []
    for col in columns:
        header.append(labels.column(col))
        if col == "code" and with_label:
            header.append(labels.column("label"))
    rows: list[list[Any]] = []
    for record in table.astype(object).where(table.notna().to_numpy(), None).itertuples(
            index=False):
        row: list[Any] = []
        for col, value in zip(columns, record, strict=True):
            row.append(value)
            if col == "code" and with_label:
                row.append(labels.code(section, value))
        rows.append(row)
    return header, rows


def _detail(detail: pd.DataFrame, labels: Labels) -> tuple[list[str], Iterable[list[Any]]]:
    columns = list(detail.columns)
    header = [labels.column(c) for c in columns]
    coded = {i: DETAIL_CODES[c] for i, c in enumerate(columns) if c in DETAIL_CODES}
    cache: dict[tuple[str, str], str] = {}

    def label(section: str, code: Any) -> Any:
        if code is None:
            return None
        key = (section, str(code))
        if key not in cache:
            cache[key] = labels.code(section, code)
        return cache[key]

    def rows() -> Iterable[list[Any]]:
        values = detail.astype(object).where(detail.notna().to_numpy(), None)
        for record in values.itertuples(index=False):
            row = list(record)
            for i, section in coded.items():
                row[i] = label(section, row[i])
            yield row

    return header, rows()


def _sheet(wb: Any, title: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Any:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    ws = wb.create_sheet(title)
    ws.freeze_panes = "A2"
    for i, text in enumerate(header):
        ws.column_dimensions[_letter(i)].width = max(10, min(48, 2 * len(str(text)) + 2))
    bold = Font(bold=True)
    cells = []
    for text in header:
        cell = WriteOnlyCell(ws, value=str(text))
        cell.font = bold
        cells.append(cell)
    ws.append(cells)
    for row in rows:
        ws.append([_cell(ws, v, WriteOnlyCell) for v in row])
    return ws


def _cell(ws: Any, value: Any, cell_type: Any) -> Any:
    if isinstance(value, str):
        value = _ILLEGAL.sub("", value)
        if value.startswith("="):
            cell = cell_type(ws, value=value)
            cell.data_type = "s"  # text, not a formula (a subject is not code to run)
            return cell
        return value
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, float) and value != value:  # NaN
        return None
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def _letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return str(get_column_letter(index + 1))
