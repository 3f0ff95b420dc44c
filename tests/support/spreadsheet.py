"""A workbook as an independent reader sees it: Gnumeric's ``ssconvert`` (Debian ``gnumeric``).

openpyxl wrote the workbook, so reading it back with openpyxl proves little. ``read_book``
has Gnumeric open the ``.xlsx`` and export (1) every sheet as CSV with the values *as
displayed* (number formats applied: ``75.0%``, ``2026-11-25 02:14``) and (2) the whole book
as Gnumeric XML, from which it takes what a reader sees without clicking: sheet names,
column widths (points), the frozen pane and the autofilter range.
"""

from __future__ import annotations

import csv
import gzip
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

GNM = "{http://www.gnumeric.org/v10.dtd}"
# Excel's default font (Calibri 11) is 7 px = 5.25 pt per digit; a CJK glyph is twice that.
POINTS_PER_CHAR = 5.25
_WIDE = re.compile(r"[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f"
                   r"\uff00-\uff60\uffe0-\uffe6]")


def ssconvert_path() -> str | None:
    return shutil.which("ssconvert")


@dataclass
class Sheet:
    name: str
    rows: list[list[str]]  # every row as displayed, header first
    widths: dict[int, float] = field(default_factory=dict)  # column index -> points
    default_width: float = 48.0
    frozen: str | None = None  # the first unfrozen cell, "A2" for a frozen header row
    filters: list[str] = field(default_factory=list)  # autofilter areas, "A1:E23"

    @property
    def header(self) -> list[str]:
        return self.rows[0] if self.rows else []

    @property
    def table(self) -> list[list[str]]:
        """The rows under the header up to the first empty row (notes follow it)."""
        out = []
        for row in self.rows[1:]:
            if not any(cell.strip() for cell in row):
                break
            out.append(row)
        return out

    def column(self, header: str) -> list[str]:
        i = self.header.index(header)
        return [row[i] if i < len(row) else "" for row in self.table]

    def records(self, key: str) -> dict[str, dict[str, str]]:
        """Table rows by the value of column ``key``, each as {header: shown text}."""
        i = self.header.index(key)
        return {row[i]: dict(zip(self.header, row, strict=False)) for row in self.table}

    def width(self, index: int) -> float:
        return self.widths.get(index, self.default_width)


def text_points(text: str) -> float:
    """The width ``text`` needs in Excel's default font, in points (an estimate)."""
    return (len(text) + len(_WIDE.findall(text))) * POINTS_PER_CHAR


def column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def read_book(xlsx: Path, work: Path) -> list[Sheet]:
    """Every sheet of ``xlsx`` as Gnumeric reads it, in order."""
    program = ssconvert_path()
    if program is None:
        raise RuntimeError("ssconvert is not installed: apt-get install -y gnumeric "
                           "(scripts/install-system.sh installs it)")
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run([program, "-S", "-T", "Gnumeric_stf:stf_assistant", "-O",
                    "format=preserve separator=, quoting-mode=auto eol=unix charset=UTF-8",
                    str(xlsx), str(work / "sheet-%n.csv")],
                   check=True, capture_output=True, timeout=60)
    subprocess.run([program, "-T", "Gnumeric_XmlIO:sax:0", str(xlsx), str(work / "book.xml")],
                   check=True, capture_output=True, timeout=60)
    raw = (work / "book.xml").read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    root = ET.fromstring(raw)
    sheets = []
    for n, node in enumerate(root.iter(f"{GNM}Sheet")):
        name = node.findtext(f"{GNM}Name") or ""
        with open(work / f"sheet-{n}.csv", encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
        sheet = Sheet(name=name, rows=rows)
        cols = node.find(f"{GNM}Cols")
        if cols is not None:
            sheet.default_width = float(cols.get("DefaultSizePts", sheet.default_width))
            for info in cols.iter(f"{GNM}ColInfo"):
                first, count = int(info.get("No", 0)), int(info.get("Count", 1))
                for i in range(first, first + count):
                    sheet.widths[i] = float(info.get("Unit", sheet.default_width))
        freeze = node.find(f"{GNM}SheetLayout/{GNM}FreezePanes")
        if freeze is not None:
            sheet.frozen = freeze.get("UnfrozenTopLeft")
        sheet.filters = [f.get("Area", "") for f in node.iter(f"{GNM}Filter")]
        sheets.append(sheet)
    return sheets
