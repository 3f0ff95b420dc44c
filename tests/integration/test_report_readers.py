"""The manager report as its readers get it, checked with real readers.

* The mail (built by the same MIME code the DAG sends with, its inline charts resolved from
  the parts) in headless Chromium: at a phone's width (360 and 400 px) nothing reaches past
  the screen's edge and every chart shows, scaled to the screen; at 1200 px the charts sit
  two to a row at their natural size. A client that drops the ``<style>`` block (no media
  queries) still gets a page that fits 400 px.
* The workbook in Gnumeric (``ssconvert``), not the library that wrote it: sheet names in
  both languages, values as displayed (percentages, hours to 0.1, times to the minute in
  the report's time zone), columns wide enough for what they show, the frozen header and
  the autofilter on every sheet.

The sample is ``tests/support/report_sample.py`` (about 270 tickets) plus tickets written to
break a layout: a subject that is one long URL, a long English subject, an unknown system.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from incident_ops.airflow.provider.senders import build_mime
from incident_ops.model import Ticket
from incident_ops.reports.charts import WIDTH as CHART_WIDTH
from incident_ops.reports.labels import HEADLINE_CARDS, SHEETS, TABLES
from tests.support import FROM_EMAIL
from tests.support.browser import Browser, Layout
from tests.support.mail import save_html_view
from tests.support.report_sample import DAY, Sample, render_sample
from tests.support.spreadsheet import (
    POINTS_PER_CHAR,
    Sheet,
    column_letter,
    read_book,
    text_points,
)

T0 = DAY.start_utc + timedelta(hours=5)
AWKWARD = [
    Ticket(id="30001", subject="门户报错 https://portal.example.cn/api/v2/customers/"
           "8888888888/orders/20261125000123/payment-callback?retry=3&trace=abcdef0123456789",
           status="in-progress", priority="urgent", system="portal", category="fault",
           handler="ouyang.xiaoming", created=T0, updated=T0),
    Ticket(id="30002", subject="Intermittent authentication failures on the customer "
           "self-service portal after certificate rotation (internationalization)",
           status="new", priority="urgent", system="legacy-billing-platform-2003",
           created=T0 + timedelta(minutes=7, seconds=31), updated=T0),
]


@pytest.fixture(scope="module", params=["zh", "en"])
def sample(request, tmp_path_factory) -> Sample:
    return render_sample(tmp_path_factory.mktemp(f"report-{request.param}"), request.param,
                         extra=AWKWARD)


def mail_page(sample: Sample, folder: Path) -> Path:
    message = message_from_bytes(bytes(build_mime(sample.email, FROM_EMAIL)),
                                 policy=policy.default)
    assert isinstance(message, EmailMessage)
    return save_html_view(message, folder)


def without_style(page: Path) -> Path:
    """The page as a client that strips <style> (no media queries) shows it."""
    bare = page.with_name("bare.html")
    bare.write_text(re.sub(r"<style>.*?</style>", "", page.read_text(encoding="utf-8"),
                           flags=re.S), encoding="utf-8")
    return bare


def shown(browser: Browser, page: Path, width: int) -> Layout:
    layout = browser.layout(browser.open(page, width=width))
    assert layout.fits(), f"at {width} px: {layout}"
    assert layout.scroll <= width  # the acceptance criterion, said plainly
    return layout


def rows_of(per_row: int) -> list[int]:
    """The headline cards laid out ``per_row`` to a row."""
    n = len(HEADLINE_CARDS)
    return [per_row] * (n // per_row) + ([n % per_row] if n % per_row else [])


def cards_per_row(browser: Browser, page: Path, width: int) -> list[int]:
    """How many headline cards sit on each row at ``width``."""
    tops = browser.open(page, width=width).evaluate(
        "[...document.querySelectorAll('.card')].map(c => Math.round("
        "c.getBoundingClientRect().top))")
    return [tops.count(top) for top in sorted(set(tops))]


# ------------------------------------------------------------------------- the mail
@pytest.mark.browser
@pytest.mark.parametrize("width", [360, 400])
def test_the_mail_fits_a_phone_with_every_chart_scaled_to_it(sample, browser, tmp_path,
                                                             width) -> None:
    layout = shown(browser, mail_page(sample, tmp_path), width)

    assert cards_per_row(browser, mail_page(sample, tmp_path), width) == rows_of(2)
    assert len(layout.images) == len(sample.report.charts) >= 4
    for alt, on_screen, natural, _ in layout.images:
        assert natural == 2 * CHART_WIDTH, alt  # drawn at 2x for sharp phone screens
        # one chart per row, as wide as the screen allows (not a thumbnail)
        assert width - 60 <= on_screen <= CHART_WIDTH, (alt, on_screen)


@pytest.mark.browser
def test_a_client_without_media_queries_still_fits_400_px(sample, browser, tmp_path) -> None:
    shown(browser, without_style(mail_page(sample, tmp_path)), 400)


@pytest.mark.browser
def test_on_a_desktop_the_charts_sit_two_to_a_row_at_their_size(sample, browser,
                                                                 tmp_path) -> None:
    layout = shown(browser, mail_page(sample, tmp_path), 1200)

    assert cards_per_row(browser, mail_page(sample, tmp_path), 1200) == rows_of(5)
    assert all(on_screen == CHART_WIDTH for _, on_screen, _, _ in layout.images)
    tops = [top for *_, top in layout.images]
    assert tops[0] == tops[1] and tops[2] == tops[3] and tops[1] < tops[2]


# ---------------------------------------------------------------------- the workbook
SHEET_NAMES = {  # the sheets of the tables every report has, as a reader sees them
    "zh": ["概览", "解决时长与SLA", "按优先级", "按系统", "按来源", "按分类", "关闭方式", "升级",
           "解决记录退回", "重复事件", "配置项", "厂商", "紧急事件", "重大影响事件", "重开事件",
           "趋势", "工单明细"],
    "en": ["Summary", "Resolution and SLA", "By priority", "By system", "By source",
           "By category", "How closed", "Escalations", "Incomplete resolutions", "Duplicates",
           "Configuration items", "Vendors", "Urgent", "Major impact", "Reopened", "Trend",
           "Tickets"],
}
NUMBER = re.compile(r"^[+-]?[\d,]+(\.\d+)?(%| pt)?$")
MINUTE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d$")


@pytest.fixture(scope="module")
def book(sample, tmp_path_factory) -> dict[str, Sheet]:
    # Gnumeric reads a file: the stored workbook, copied out of the archive.
    work = tmp_path_factory.mktemp("gnumeric")
    xlsx = work / "workbook.xlsx"
    xlsx.write_bytes(sample.archive.read(sample.archive.key("workbook.xlsx")))
    return {s.name: s for s in read_book(xlsx, work)}


def test_gnumeric_finds_a_sheet_per_table_named_whole_words(sample, book) -> None:
    labels = sample.labels
    # Every table has a short name of its own (no title cut to 31 characters) ...
    assert all(name in SHEETS for name in sample.kpis.tables)
    expected = [labels.sheet("summary"),
                *(labels.sheet(name) for name in TABLES if name in sample.kpis.tables),
                labels.sheet("detail")]
    assert list(book) == expected and all(len(name) <= 31 for name in book)
    # ... and these are the names a reader finds.
    assert set(SHEET_NAMES[sample.language]) <= set(book)


def test_every_sheet_has_a_frozen_header_and_a_filter_over_its_table(book) -> None:
    for sheet in book.values():
        assert sheet.frozen == "A2", sheet.name
        last = column_letter(len(sheet.header) - 1)
        assert sheet.filters == [f"A1:{last}{len(sheet.table) + 1}"], sheet.name


def test_numbers_are_shown_rounded_with_their_units(sample, book) -> None:
    h, labels = sample.kpis.headline, sample.labels
    summary = book[labels.sheet("summary")]
    by_code = summary.records(labels.column("code"))
    value, change = labels.column("value"), labels.column("delta")
    assert by_code["created"][value] == f"{h['created']:,}"
    assert by_code["sla_pct"][value] == f"{h['sla_pct']:.1f}%"
    assert by_code["mean_ttr_h"][value] == f"{h['mean_ttr_h']:.1f}"
    assert by_code["p90_ttr_h"][value] == f"{h['p90_ttr_h']:.1f}"
    assert re.fullmatch(r"[+-]\d+\.\d pt", by_code["sla_pct"][change])
    assert re.fullmatch(r"[+-]?\d+", by_code["created"][change])
    for sheet in book.values():  # no 9.800000000000001 anywhere
        for row in sheet.table:
            for cell in row:
                if NUMBER.match(cell):
                    assert not re.search(r"\.\d{2,}", cell), (sheet.name, cell)

    resolution = book[labels.sheet("resolution_priority")]
    for column, pattern in (("sla_pct", r"\d+\.\d%"), ("previous_sla_pct", r"\d+\.\d%"),
                            ("mean_ttr_h", r"\d+\.\d"), ("p90_ttr_h", r"\d+\.\d")):
        cells = [c for c in resolution.column(labels.column(column)) if c]
        assert cells and all(re.fullmatch(pattern, c) for c in cells), (column, cells)


def test_times_are_local_to_the_minute(sample, book) -> None:
    labels = sample.labels
    created, ticket = labels.column("created_at"), labels.column("id")
    detail = book[labels.sheet("detail")]
    shown_times = [c for c in detail.column(created) if c]
    assert shown_times and all(MINUTE.match(c) for c in shown_times)
    # 30002 was created at 21:07:31 UTC on the 24th: 05:07 on the 25th in Shanghai, the
    # seconds cut off
    assert (T0 + timedelta(minutes=7, seconds=31)).isoformat() == "2026-11-24T21:07:31+00:00"
    assert detail.records(ticket)["30002"][created] == "2026-11-25 05:07"
    # The KPI list holds UTC ISO strings; the workbook shows local minutes too.
    urgent = book[labels.sheet("urgent")]
    assert urgent.records(ticket)["30002"][created] == "2026-11-25 05:07"


def test_columns_are_wide_enough_for_what_they_show(book) -> None:
    capped = 60 * POINTS_PER_CHAR  # long subjects may end at the column edge, numbers never
    for sheet in book.values():
        for i, header in enumerate(sheet.header):
            width = sheet.width(i)
            # the header text beside the filter button (about 12 pt)
            assert width >= min(capped, text_points(header) + 12), (sheet.name, header, width)
            cells = [row[i] for row in sheet.table if i < len(row) and row[i]]
            for cell in cells:
                need = text_points(cell) if NUMBER.match(cell) or MINUTE.match(cell) \
                    else min(capped, text_points(cell))
                assert width >= need, (sheet.name, header, cell, width, need)


# ------------------------------------------------------------------- the doc pictures
@pytest.mark.browser
def test_the_screenshots_in_docs_can_be_redrawn(tmp_path) -> None:
    from PIL import Image

    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, str(root / "scripts" / "render_report_png.py"),
                    "--out-dir", str(tmp_path)], check=True, capture_output=True, timeout=180,
                   env={**os.environ, "PYTHONPATH": f"{root / 'include'}:{root}"})
    for name, width in (("report-email.png", 820), ("report-email-phone.png", 400)):
        with Image.open(tmp_path / name) as image:
            assert image.width == width and image.height > 2000, name
