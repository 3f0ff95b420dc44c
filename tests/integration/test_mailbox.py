"""The demo mailbox (scripts/mailcatcher.py) as a newcomer reads it, in headless Chromium.

The catcher runs as its own process; the mail and SMS reach it through the product's
senders (SMTP with the MIME builder, the SMS gateway hook).
"""

from __future__ import annotations

import re

import pytest
import requests

from tests.support.catcher import Catcher, fill_with_sample

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    root = tmp_path_factory.mktemp("mailbox")
    with Catcher(root) as catcher:
        yield catcher, fill_with_sample(catcher, root / "work")


def test_the_index_lists_each_mail_with_its_headers_and_each_sms_as_a_row(filled, browser):
    catcher, sample = filled
    page = browser.open(catcher.url + "/", width=1200)
    text = page.inner_text("body")
    assert sample.report_subject in text and sample.alert_subject in text
    assert "事件管理 Incident Ops <incident-ops@ops.example.cn>" in text  # From, named
    assert f"attachment: {sample.workbook[0]}" in text
    rows = page.locator("#sms ~ table tr").all_inner_texts()
    assert any("13800000031" in r and sample.sms_texts[0] in r for r in rows), rows
    assert "Mail (2)" in text and "SMS (2)" in text


def test_a_report_mail_shows_its_charts_inline_and_offers_the_workbook(filled, browser):
    catcher, sample = filled
    [report] = [m for m in catcher.mail() if m["subject"] == sample.report_subject]
    page = browser.open(f"{catcher.url}/mail/{report['id']}", width=1200)
    header = page.inner_text("table.hdr")
    assert re.search(r"From\s+事件管理 Incident Ops <incident-ops@ops.example.cn>", header)
    assert "Message-ID" in header and "Date" in header
    frame = page.frame_locator("#body")
    images = frame.locator("img")
    assert images.count() >= sample.charts > 0
    loaded = page.frames[1].evaluate(
        "[...document.images].filter(i => i.complete && i.naturalWidth > 0).length")
    assert loaded == images.count()  # no broken cid: image
    # the frame is as tall as the mail: one page to read, nothing cut off
    height = page.evaluate("document.getElementById('body').getBoundingClientRect().height")
    assert height >= page.frames[1].evaluate("document.documentElement.scrollHeight")
    link = page.locator(f"a[download='{sample.workbook[0]}']")
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == sample.workbook[0]
    assert open(download.value.path(), "rb").read() == sample.workbook[1]


def test_the_plain_text_part_and_the_raw_message_are_one_click_away(filled):
    catcher, sample = filled
    [alert] = [m for m in catcher.mail() if m["subject"] == sample.alert_subject]
    text = requests.get(f"{catcher.url}/mail/{alert['id']}/text", timeout=10).text
    assert "urgent_incidents: run scheduled__2026-11-26T07:31:00+00:00 failed" in text
    raw = requests.get(f"{catcher.url}/mail/{alert['id']}/raw", timeout=10)
    assert raw.headers["Content-Disposition"] == f'attachment; filename="{alert["id"]}.eml"'
    assert alert["message_id"].encode() in raw.content


def test_sms_come_back_as_records_with_number_text_and_key(filled):
    catcher, sample = filled
    records = catcher.sms()
    assert [(r["to"], r["text"]) for r in records] == [
        ("13800000041", sample.sms_texts[1]), ("13800000031", sample.sms_texts[0])]
    assert records[0]["idempotency_key"] == "sample:1"


def test_unknown_mail_and_part_are_404(filled):
    catcher, _ = filled
    assert requests.get(catcher.url + "/mail/99999", timeout=10).status_code == 404
    assert requests.get(catcher.url + "/mail/../etc", timeout=10).status_code == 404
    first = catcher.mail()[-1]["id"]
    assert requests.get(f"{catcher.url}/mail/{first}/part/999", timeout=10).status_code == 404


def test_a_busy_day_pages_through_every_mail_newest_first(tmp_path):
    """1,078 mails in a demo day: the index counts them all and pages through them, 100 a
    page, newest first, every mail reachable (it listed the newest 500 as 'Mail (500)')."""
    import smtplib
    from email.message import EmailMessage

    total = 250
    with Catcher(tmp_path) as catcher, smtplib.SMTP("127.0.0.1", catcher.smtp_port) as smtp:
        for n in range(1, total + 1):
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = "a@ops.example.cn", "b@ops.example.cn", \
                f"mail number {n:03d}"
            msg.set_content("x")
            smtp.send_message(msg)
        first = requests.get(catcher.url + "/", timeout=10).text
        assert f"Mail ({total})" in first
        assert "newest first &middot; 1&ndash;100 of 250 &middot; page 1 of 3" in first
        seen = []
        for page in (1, 2, 3):
            html = requests.get(f"{catcher.url}/?page={page}", timeout=10).text
            seen += [int(n) for n in re.findall(r"mail number (\d{3})", html)]
            assert ("older &rarr;" in html) == (page < 3)
            assert ("&larr; newer" in html) == (page > 1)
        assert seen == list(range(total, 0, -1))  # all of them, once each, newest first
        last = requests.get(f"{catcher.url}/?page=99", timeout=10).text  # clamped
        assert "201&ndash;250 of 250" in last
        assert "page 1 of 3" in requests.get(f"{catcher.url}/?page=x", timeout=10).text
