"""The Major Incident Report as a PDF, read back with poppler (``pdffonts``, ``pdfinfo``,
``pdftotext``), not with the browser that printed it.

The PDF is printed by Debian's Chromium from the report's printable page, the way the
aftermath makes it (``reports.pdf.store_pdf``: the page read from the artefact store, printed
from a temporary copy, the PDF written back through the store beside it): A4, every font
embedded (a reader without Chinese fonts sees the same document), the Chinese text a real
font, not boxes, and the same words as the HTML (times labelled with the zone).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from incident_ops.artefacts import LocalStore, read_text
from incident_ops.reports.emergency_report import report_context, write_report
from incident_ops.reports.pdf import PdfUnavailable, chromium_path, store_pdf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from emergency_sample import brief, rounds  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def poppler(tool: str, *args: str) -> str:
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed: scripts/install-system.sh installs poppler-utils")
    return subprocess.run([tool, *args], capture_output=True, text=True, check=True,
                          timeout=60).stdout


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory
            ) -> tuple[Path, dict[str, str], LocalStore]:
    """The stored PDF copied out for poppler, the report's keys (the PDF's too), the store."""
    if chromium_path() is None:
        pytest.fail("chromium is not installed: run scripts/install-system.sh")
    rs, decisions, notes = rounds()
    ctx = report_context(brief(), rs, decisions, notes,
                         generated_at=datetime(2026, 11, 26, 3, 30, tzinfo=UTC))
    store = LocalStore(tmp_path_factory.mktemp("store"))
    paths = write_report(ctx, store, "emergency_report/2026-11-26")
    paths["pdf"] = store_pdf(store, paths["print"])
    assert paths["pdf"] == paths["print"].removesuffix("-print.html") + ".pdf"
    assert store.keys("emergency_report") == sorted(paths.values())  # nothing else left
    pdf = tmp_path_factory.mktemp("poppler") / "report.pdf"
    pdf.write_bytes(store.read_bytes(paths["pdf"]))
    return pdf, paths, store


def test_the_pdf_is_a4_with_every_font_embedded_and_a_chinese_one_among_them(printed):
    pdf, _, _ = printed
    info = poppler("pdfinfo", str(pdf))
    assert "(A4)" in info
    rows = poppler("pdffonts", str(pdf)).splitlines()[2:]
    assert rows, "no fonts at all: the text would be an image"
    # columns: name type [encoding...] emb sub uni object ID; "emb" is the 5th from the end
    assert all(row.split()[-5] == "yes" for row in rows), "\n".join(rows)
    assert any("WenQuanYi" in row or "CJK" in row for row in rows), "\n".join(rows)


def test_the_pdf_says_what_the_html_says(printed):
    pdf, paths, store = printed
    text = " ".join(poppler("pdftotext", "-layout", str(pdf), "-").split())
    html = read_text(store, paths["print"])
    for phrase in ("《重大事件报告》", "EMR-4711-20261126", "回退昨晚上线的缴费网关版本",
                   "2026-11-26 10:58 (Asia/Shanghai)"):
        assert phrase in html
        assert phrase in text, phrase
    assert "应急组长 / Team leader" in text  # the printable page's sign-off


def test_without_a_browser_no_pdf_is_made_and_the_reason_is_given(printed, tmp_path,
                                                                    monkeypatch):
    _, paths, stored = printed
    store = LocalStore(tmp_path)
    store.write_bytes("r/EMR-1-print.html", stored.read_bytes(paths["print"]))
    monkeypatch.setenv("INCIDENT_OPS_CHROMIUM", str(tmp_path / "no-such-browser"))
    with pytest.raises(PdfUnavailable, match="no Chromium found"):
        store_pdf(store, "r/EMR-1-print.html")
    assert store.keys("r") == ["r/EMR-1-print.html"]  # no PDF, not even half of one
