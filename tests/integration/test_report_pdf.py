"""The Major Incident Report as a PDF, read back with poppler (``pdffonts``, ``pdfinfo``,
``pdftotext``), not with the browser that printed it.

The PDF is printed by Debian's Chromium from the report's printable page (``reports/pdf``):
A4, every font embedded (a reader without Chinese fonts sees the same document), the Chinese
text a real font, not boxes, and the same words as the HTML (times labelled with the zone).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from incident_ops.reports.emergency_report import report_context, write_report
from incident_ops.reports.pdf import PdfUnavailable, chromium_path, html_to_pdf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from emergency_sample import brief, rounds  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def poppler(tool: str, *args: str) -> str:
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed: scripts/install-system.sh installs poppler-utils")
    return subprocess.run([tool, *args], capture_output=True, text=True, check=True,
                          timeout=60).stdout


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    if chromium_path() is None:
        pytest.fail("chromium is not installed: run scripts/install-system.sh")
    rs, decisions, notes = rounds()
    ctx = report_context(brief(), rs, decisions, notes,
                         generated_at=datetime(2026, 11, 26, 3, 30, tzinfo=UTC))
    out = tmp_path_factory.mktemp("pdf")
    paths = write_report(ctx, out)
    return html_to_pdf(Path(paths["print"]), out / "EMR-4711.pdf"), paths


def test_the_pdf_is_a4_with_every_font_embedded_and_a_chinese_one_among_them(printed):
    pdf, _ = printed
    info = poppler("pdfinfo", str(pdf))
    assert "(A4)" in info
    rows = poppler("pdffonts", str(pdf)).splitlines()[2:]
    assert rows, "no fonts at all: the text would be an image"
    # columns: name type [encoding...] emb sub uni object ID; "emb" is the 5th from the end
    assert all(row.split()[-5] == "yes" for row in rows), "\n".join(rows)
    assert any("WenQuanYi" in row or "CJK" in row for row in rows), "\n".join(rows)


def test_the_pdf_says_what_the_html_says(printed):
    pdf, paths = printed
    text = " ".join(poppler("pdftotext", "-layout", str(pdf), "-").split())
    html = Path(paths["print"]).read_text(encoding="utf-8")
    for phrase in ("《重大事件报告》", "EMR-4711-20261126", "回退昨晚上线的缴费网关版本",
                   "2026-11-26 10:58 (Asia/Shanghai)"):
        assert phrase in html
        assert phrase in text, phrase
    assert "应急组长 / Team leader" in text  # the printable page's sign-off


def test_without_a_browser_no_pdf_is_made_and_the_reason_is_given(printed, tmp_path,
                                                                    monkeypatch):
    _, paths = printed
    monkeypatch.setenv("INCIDENT_OPS_CHROMIUM", str(tmp_path / "no-such-browser"))
    target = tmp_path / "x.pdf"
    with pytest.raises(PdfUnavailable, match="no Chromium found"):
        html_to_pdf(Path(paths["print"]), target)
    assert not target.exists()
