"""The report's Excel workbook (openpyxl): the summary, every KPI table, and the tickets.

One table per sheet with its header in the first row, so ``pandas.read_excel`` reads any
sheet back as it is shown; the header is frozen and carries an autofilter over the table.
Code columns keep the code next to its label (a filter on a code survives a change of
language). Written in openpyxl's write-only mode: the detail sheet may hold a hundred
thousand rows.

What a reader sees without touching a column: widths from the longest value shown (Chinese
characters count double), percentages as Excel percentages (``0.0%``, the cell holds 0.75
for 75 %), hours to one decimal, counts with thousands separators, changes signed, times to
the minute in the report's time zone (the KPI tables hold UTC ISO strings; they are
converted here).

Cell text is data, never a formula: a ticket subject starting with ``=`` is written as a
string cell, and characters XML cannot carry are dropped instead of failing the report.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from incident_ops.reports.kpis import PeriodKpis
from incident_ops.reports.labels import METRICS, TABLES, Labels

# Characters Excel's XML cannot hold (openpyxl refuses them): C0 controls but tab/CR/LF.
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_SHEET_UNSAFE = re.compile(r"[\[\]:*?/\\]")
_UTC_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]00:?00)$")
_DAY = re.compile(r"^\d{4}-\d\d-\d\d$")
_WIDE = re.compile(r"[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f"
                   r"\uff00-\uff60\uffe0-\uffe6]")
SHEET_MAX = 31  # Excel's limit on a sheet name
# Codes in the detail sheet and the vocabulary section their labels come from.
DETAIL_CODES = {"status": "statuses", "priority": "priorities", "impact": "impacts",
                "source": "sources", "category": "categories", "system": "systems",
                "resolver_role": "resolver_roles", "close_code": "close_codes"}
ID_COLUMNS = frozenset({"id", "master_id", "duplicate_of"})
# Timestamp columns of the KPI ticket lists and the header they get there.
STAMP_HEADERS = {"created": "created_at", "resolved": "resolved_at"}

# Number formats (Excel's codes; Gnumeric and LibreOffice read the same).
PERCENT = "0.0%"
HOURS = "0.0"
COUNT = "#,##0"
CHANGE = "+#,##0;-#,##0;0"
CHANGE_HOURS = "+0.0;-0.0;0.0"
CHANGE_POINTS = '+0.0" pt";-0.0" pt";0.0" pt"'
MINUTE = "yyyy-mm-dd hh:mm"
DAY = "yyyy-mm-dd"
WIDTH_MIN, WIDTH_MAX = 6, 60


def sheet_title(text: str, taken: set[str]) -> str:
    """A valid, unique sheet name: at most 31 characters, none of ``[]:*?/\\``, cut
    between words rather than inside one."""
    base = " ".join(_SHEET_UNSAFE.sub(" ", text).split()) or "Sheet"
    if len(base) > SHEET_MAX:
        cut = base[:SHEET_MAX + 1].rsplit(" ", 1)[0] if " " in base[:SHEET_MAX + 1] else ""
        base = cut.rstrip(" (-,&") if len(cut) >= SHEET_MAX // 2 else base[:SHEET_MAX]
    title, n = base, 2
    while title.lower() in taken:
        suffix = f" ({n})"
        title, n = base[:SHEET_MAX - len(suffix)].rstrip() + suffix, n + 1
    taken.add(title.lower())
    return title


def build_workbook(kpis: PeriodKpis, labels: Labels, detail: pd.DataFrame,
                   detail_total: int) -> bytes:
    """The workbook as bytes (``.xlsx``)."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    wb.security = None  # else an empty <workbookProtection/> that other readers complain of
    taken: set[str] = set()
    _sheet(wb, sheet_title(labels.sheet("summary"), taken), _summary(kpis, labels))
    for name in TABLES:
        if name in kpis.tables:
            table = _table(kpis.tables[name], name, labels, kpis.period.tz)
            _sheet(wb, sheet_title(labels.sheet(name), taken), table)
    notes = [labels.text("local_time", tz=kpis.period.tz)]
    if detail_total > len(detail):
        notes.append(labels.text("detail_capped", n=len(detail), total=detail_total))
    _sheet(wb, sheet_title(labels.sheet("detail"), taken), _detail(detail, labels),
           notes=notes)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


class _Table:
    """A sheet's content: header, column formats and widths, and the rows (maybe lazy)."""

    def __init__(self, header: list[str], formats: list[str | None],
                 widths: list[float], rows: Iterable[Sequence[Any]], count: int) -> None:
        self.header, self.formats, self.widths = header, formats, widths
        self.rows, self.count = rows, count


def _summary(kpis: PeriodKpis, labels: Labels) -> _Table:
    header = [labels.column("metric"), labels.column("code"), labels.column("value"),
              labels.column("previous"), labels.column("delta")]
    rows: list[list[Any]] = []
    formats: list[list[str | None]] = []
    for key in METRICS:
        unit = labels.unit(key)
        now, before, delta = (kpis.headline.get(key), kpis.previous_headline.get(key),
                              kpis.delta(key))
        if unit == "%":
            rows.append([labels.metric(key), key, _percent(now), _percent(before),
                         _round(delta, 1)])
            formats.append([None, None, PERCENT, PERCENT, CHANGE_POINTS])
        elif unit == "h":
            rows.append([labels.metric(key), key, _round(now, 2), _round(before, 2),
                         _round(delta, 2)])
            formats.append([None, None, HOURS, HOURS, CHANGE_HOURS])
        else:
            rows.append([labels.metric(key), key, now, before, delta])
            formats.append([None, None, COUNT, COUNT, CHANGE])
    # Formats differ by row here: the rows carry their own (see _sheet).
    styled = [[_Styled(v, f) for v, f in zip(row, fmt, strict=True)]
              for row, fmt in zip(rows, formats, strict=True)]
    shown = [[_shown(v, f) for v, f in zip(row, fmt, strict=True)]
             for row, fmt in zip(rows, formats, strict=True)]
    widths = [_width([h, *col]) for h, col in zip(header, zip(*shown, strict=True),
                                                    strict=True)]
    return _Table(header, [None] * len(header), widths, styled, len(rows))


class _Styled:
    """A value with its own number format (the summary's rows differ in unit)."""

    __slots__ = ("value", "number_format")

    def __init__(self, value: Any, number_format: str | None) -> None:
        self.value, self.number_format = value, number_format


def _table(table: pd.DataFrame, name: str, labels: Labels, tz: str) -> _Table:
    section = labels.code_section(name)
    header: list[str] = []
    columns: list[pd.Series] = []
    formats: list[str | None] = []
    for col in table.columns:
        values = table[col]
        stamps = _utc_stamps(values)
        if stamps is not None:
            header.append(labels.column(STAMP_HEADERS.get(col, col)))
            columns.append(_local_minutes(stamps, tz))
            formats.append(MINUTE)
            continue
        header.append(labels.column(col))
        if col == "code":
            columns.append(values)
            formats.append(None)
            header.append(labels.column("label"))
            columns.append(values.map(lambda c: labels.code(section, c)))
            formats.append(None)
        elif col in DETAIL_CODES:
            columns.append(values.map(lambda c, s=DETAIL_CODES[col]: labels.code(s, c)
                                      if c is not None and c == c else None))
            formats.append(None)
        else:
            column, fmt = _numbers(col, values)
            columns.append(column)
            formats.append(fmt)
    frame = pd.concat(columns, axis=1, ignore_index=True) if columns else pd.DataFrame()
    return _from_frame(header, formats, frame)


def _detail(detail: pd.DataFrame, labels: Labels) -> _Table:
    header: list[str] = []
    columns: list[pd.Series] = []
    formats: list[str | None] = []
    for col in detail.columns:
        values = detail[col]
        header.append(labels.column(col))
        if col in DETAIL_CODES:
            section = DETAIL_CODES[col]
            mapping = {c: labels.code(section, c) for c in values.dropna().unique()}
            columns.append(values.map(mapping))
            formats.append(None)
        elif col == "escalation":  # rungs reached, "at-risk|breached"
            mapping = {v: " | ".join(labels.code("rungs", r) for r in str(v).split("|") if r)
                       for v in values.dropna().unique()}
            columns.append(values.map(mapping))
            formats.append(None)
        elif pd.api.types.is_datetime64_any_dtype(values):
            columns.append(values.dt.floor("min"))  # already local (kpis.period_tickets)
            formats.append(MINUTE)
        else:
            column, fmt = _numbers(col, values)
            columns.append(column)
            formats.append(fmt)
    frame = pd.concat(columns, axis=1, ignore_index=True) if columns else pd.DataFrame()
    return _from_frame(header, formats, frame)


def _numbers(col: str, values: pd.Series) -> tuple[pd.Series, str | None]:
    """A column as the workbook holds it, and its number format."""
    if col in ID_COLUMNS:  # "10234" is a number to sort and filter by; "INC0010234" is not
        return values.map(lambda v: int(v) if isinstance(v, str) and v.isdigit() else v), None
    present = values.dropna()
    if present.empty or present.map(lambda v: isinstance(v, (bool, np.bool_))).any():
        return values, None  # a yes/no column stays TRUE/FALSE
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().sum() != len(present):  # text
        if present.map(lambda v: isinstance(v, str) and bool(_DAY.match(v))).all():
            return pd.to_datetime(values, errors="coerce"), DAY
        return values, None
    if col.endswith("_pct"):
        return (numeric / 100).round(4), PERCENT
    if col.endswith("_h"):
        return numeric.round(2), HOURS
    if col == "delta":
        return numeric, CHANGE
    if (numeric.dropna() % 1 == 0).all():
        return numeric, COUNT
    return numeric.round(4), None


def _from_frame(header: list[str], formats: list[str | None], frame: pd.DataFrame) -> _Table:
    widths = []
    for i, text in enumerate(header):
        values = frame[i] if i in frame.columns else pd.Series(dtype=object)
        widths.append(_column_width(text, values, formats[i]))
    values = frame.astype(object).where(frame.notna().to_numpy(), None)
    return _Table(header, formats, widths, values.itertuples(index=False, name=None),
                  len(frame))


def _column_width(header: str, values: pd.Series, fmt: str | None) -> float:
    """Excel column width (characters of the default font) for the longest text shown."""
    present = values.dropna()
    if present.empty:
        return _width([header])
    if fmt in (MINUTE, DAY):
        longest = len("2026-01-01 00:00") if fmt == MINUTE else len("2026-01-01")
    elif fmt is not None or pd.api.types.is_numeric_dtype(present):
        longest = max(len(_shown(v, fmt)) for v in (present.min(), present.max()))
    else:
        text = present.astype(str)
        longest = int((text.str.len() + text.str.count(_WIDE.pattern)).max())
    return _width([header], floor=longest)


def _width(texts: Iterable[Any], floor: int = 0) -> float:
    longest = max([floor, *(_display(str(t)) for t in texts if t is not None)])
    # Bold headers and the filter button take about two characters more.
    return float(min(WIDTH_MAX, max(WIDTH_MIN, longest + 3)))


def _display(text: str) -> int:
    return len(text) + len(_WIDE.findall(text))


def _shown(value: Any, fmt: str | None) -> str:
    """Roughly the text Excel shows for ``value`` in ``fmt`` (for column widths)."""
    if value is None:
        return ""
    if fmt == PERCENT:
        return f"{float(value) * 100:.1f}%"
    if fmt in (HOURS, CHANGE_HOURS):
        return f"{float(value):+.1f}" if fmt == CHANGE_HOURS else f"{float(value):.1f}"
    if fmt == CHANGE_POINTS:
        return f"{float(value):+.1f} pt"
    if fmt in (COUNT, CHANGE):
        number = int(value)
        return f"{number:+,d}" if fmt == CHANGE else f"{number:,d}"
    return str(value)


def _utc_stamps(values: pd.Series) -> pd.Series | None:
    """``values`` as UTC times if every value is an ISO UTC timestamp string, else None."""
    present = values.dropna()
    if present.empty or not present.map(lambda v: isinstance(v, str)
                                        and bool(_UTC_STAMP.match(v))).all():
        return None
    return pd.to_datetime(values, utc=True, errors="coerce")


def _local_minutes(stamps: pd.Series, tz: str) -> pd.Series:
    return stamps.dt.tz_convert(tz).dt.tz_localize(None).dt.floor("min")


def _percent(value: Any) -> float | None:
    return None if value is None else round(float(value) / 100, 4)


def _round(value: Any, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def _sheet(wb: Any, title: str, table: _Table, notes: Sequence[str] = ()) -> Any:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font, PatternFill

    ws = wb.create_sheet(title)
    ws.freeze_panes = "A2"
    for i, width in enumerate(table.widths):
        ws.column_dimensions[_letter(i)].width = width
    head_font, head_fill = Font(bold=True), PatternFill("solid", fgColor="DCE6F1")
    head_align = Alignment(vertical="center")
    cells = []
    for text in table.header:
        cell = WriteOnlyCell(ws, value=str(text))
        cell.font, cell.fill, cell.alignment = head_font, head_fill, head_align
        cells.append(cell)
    ws.append(cells)
    writers = [_writer(ws, fmt) for fmt in table.formats]
    for row in table.rows:
        ws.append([write(value) for write, value in zip(writers, row, strict=False)])
    last_col = max(1, len(table.header))
    ws.auto_filter.ref = f"A1:{_letter(last_col - 1)}{table.count + 1}"
    for note in notes:  # after the table and its filter range, so the header stays in row 1
        ws.append([])
        ws.append([note])
    return ws


def _writer(ws: Any, fmt: str | None) -> Any:
    """What turns a value of a column in format ``fmt`` into what ``ws.append`` takes,
    chosen once per column: the detail sheet calls it millions of times."""
    from openpyxl.cell import WriteOnlyCell

    if fmt is None:
        return lambda value: _cell(ws, value, WriteOnlyCell)
    # One styled cell per column, refilled for every row: ``ws.append`` writes a row out
    # before it returns, and building a hundred thousand styled cells costs seconds.
    cell = WriteOnlyCell(ws)
    cell.number_format = fmt

    def styled(value: Any) -> Any:
        value = _plain(value)
        if value is None:
            return None
        cell.value = value
        return cell

    return styled


def _cell(ws: Any, value: Any, cell_type: Any) -> Any:
    if isinstance(value, _Styled):
        fmt, value = value.number_format, _plain(value.value)
        if fmt is not None and value is not None:
            cell = cell_type(ws, value=value)
            cell.number_format = fmt
            return cell
    value = _plain(value)
    if isinstance(value, str):
        value = _ILLEGAL.sub("", value)
        if value.startswith("="):
            cell = cell_type(ws, value=value)
            cell.data_type = "s"  # text, not a formula (a subject is not code to run)
            return cell
    return value


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float)) and value == value:
        return value  # the common case first: most cells are text or plain numbers
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.to_pydatetime()
    if isinstance(value, float):  # NaN
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        return value.item()
    return value


def _letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return str(get_column_letter(index + 1))
