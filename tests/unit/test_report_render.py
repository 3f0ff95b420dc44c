"""The manager report as rendered: mail parts, escaping, empty periods, workbook, English,
and how the mails of one period are keyed and threaded. (Layout at phone and desktop widths
and the workbook in an independent reader: tests/integration/test_report_readers.py.)"""

from __future__ import annotations

import io
import re
from datetime import date, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pandas as pd
import pytest

from incident_ops.airflow.provider.senders import build_mime
from incident_ops.config import load_contacts, load_vocabulary, load_yaml
from incident_ops.engine.once import StoreLedger
from incident_ops.model import Ticket
from incident_ops.pipelines.reports import prepare_email, report_key
from incident_ops.policy.escalation import SlaPolicy
from incident_ops.reports.archive import IncompleteReport, ReportArchive
from incident_ops.reports.frame import frame_from_tickets
from incident_ops.reports.kpis import KpiSettings, PeriodKpis, compute_kpis, period_tickets
from incident_ops.reports.labels import Labels
from incident_ops.reports.periods import Period
from incident_ops.reports.render import RenderedReport, content_id, render_report
from incident_ops.reports.settings import ReportSettings
from incident_ops.reports.workbook import sheet_title

VOCAB = load_vocabulary()
SETTINGS = KpiSettings.from_config(VOCAB, SlaPolicy.from_dict(load_yaml("sla.yaml")),
                                   tz="Asia/Shanghai")
DAY = Period("daily", date(2026, 11, 25))
T0 = DAY.start_utc + timedelta(hours=3)
EVIL = '<script>alert("x")</script>'


def tickets() -> list[Ticket]:
    done = T0 + timedelta(hours=2)
    return [
        Ticket(id="1", subject=f"{EVIL} 计费中断", status="resolved", priority="urgent",
               impact="major", system="billing", category="fault", created=T0, updated=done,
               resolved_at=done, completed_at=done, config_item="=HYPERLINK(\"x\")"),
        Ticket(id="2", subject="=1+1 公式", status="new", priority="high", system="crm",
               created=T0 + timedelta(hours=1), updated=T0 + timedelta(hours=1)),
    ]


def rendered(items: list[Ticket], lang: str = "zh") -> tuple[RenderedReport, PeriodKpis]:
    frame = frame_from_tickets(items)
    kpis = compute_kpis(frame, DAY, SETTINGS)
    detail, total = period_tickets(frame, DAY, SETTINGS)
    report = render_report(kpis, Labels(VOCAB, lang), detail, total, dag_id="d", run_id="r")
    return report, kpis


def test_ticket_text_is_escaped_in_the_mail_and_the_archive() -> None:
    report, _ = rendered(tickets())
    for html in (report.email_html, report.archive_html):
        assert EVIL not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; 计费中断" in html


def test_mail_references_its_charts_by_content_id_and_the_archive_by_file() -> None:
    report, kpis = rendered(tickets())
    assert len(report.charts) >= 4
    for chart in report.charts:
        assert f'src="cid:{content_id(kpis, chart)}"' in report.email_html
        assert f'src="charts/{chart.name}.png"' in report.archive_html
        assert chart.png.startswith(b"\x89PNG")
    assert "cid:" not in report.archive_html


def test_the_sent_mail_carries_every_chart_inline_and_the_workbook(tmp_path: Path) -> None:
    report, kpis = rendered(tickets())
    archive = ReportArchive(tmp_path, DAY)
    archive.write_json(archive.kpis, kpis.to_dict())
    archive.write_rendered(report, {c.name: content_id(kpis, c) for c in report.charts},
                           {"kpis_digest": "0" * 64})
    settings = ReportSettings.from_dict(load_yaml("reports.yaml"))
    email = prepare_email(archive, settings, load_contacts(), ())
    assert email.to == ("incident.manager@ops.example.cn",)
    assert email.key == report_key(DAY, "zh", 0, "0" * 64) and email.references == ()
    message = message_from_bytes(bytes(build_mime(email, "ops@example.cn")),
                                 policy=policy.default)
    html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    # Text parts travel with CRLF line ends (RFC 5322); the words are the rendered ones.
    assert text.replace("\r\n", "\n") == report.email_text and "新建事件：2 (" in text
    cids = set(re.findall(r'src="cid:([^"]+)"', html))
    inline = {str(p["Content-ID"]).strip("<>") for p in message.walk() if p["Content-ID"]}
    assert cids == inline and len(cids) == len(report.charts)
    [xlsx] = [p for p in message.iter_attachments()
              if (p.get_filename() or "").endswith(".xlsx")]
    assert xlsx.get_filename() == "incident-daily-2026-11-25.xlsx"


def test_send_refuses_a_half_written_report(tmp_path: Path) -> None:
    report, kpis = rendered(tickets())
    archive = ReportArchive(tmp_path, DAY)
    archive.write_rendered(report, {c.name: content_id(kpis, c) for c in report.charts},
                           {"kpis_digest": "0" * 64})
    archive.write(archive.key("workbook.xlsx"), b"truncated")
    with pytest.raises(IncompleteReport):
        archive.read_manifest()


def test_an_empty_period_says_so_plainly_and_draws_nothing() -> None:
    report, _ = rendered([])
    assert "本期没有新建、解决或关闭的事件单。" in report.email_html
    assert report.charts == [] and "<img" not in report.email_html
    assert "本期没有新建、解决或关闭的事件单" in report.subject
    book = pd.read_excel(io.BytesIO(report.workbook), sheet_name=None)
    assert book["概览"].set_index("代码").loc["created", "本期"] == 0


def test_english_report() -> None:
    report, _ = rendered(tickets(), lang="en")
    assert report.subject.startswith("Incident management daily report 2026-11-25: 2 created")
    assert "Time to resolve and SLA by priority" in report.email_html
    assert "Urgent" in report.email_html and "紧急" not in report.email_html
    for body in (report.email_html, report.email_text):
        assert "Period: 2026-11-25 (Wed)" in body and "：" not in body  # no full-width colon
    assert "- Created: 2 (" in report.email_text


def test_the_plain_text_part_has_the_headline_figures_and_the_urgent_incidents() -> None:
    report, kpis = rendered(tickets())
    lines = report.email_text.splitlines()
    assert lines[0] == "事件管理日报 · 2026-11-25"
    assert "- 新建事件：2 (▲ +2，上期 0)" in lines
    assert "- SLA 达成率：100.0% (—)" in lines  # nothing resolved the day before
    assert kpis.headline["sla_pct"] == 100.0
    # Plain text is not HTML: the subject is shown as it is, not escaped.
    assert f"- #1 {EVIL} 计费中断 · 计费账务系统 · 已解决 · 用时 2.0h" in lines  # urgent
    assert "重大影响事件 (应急)" in lines
    assert f"- #1 {EVIL} 计费中断 · 紧急 · 计费账务系统 · 已解决 · 用时 2.0h" in lines  # major
    assert "明细见附件 Excel 工作簿：incident-daily-2026-11-25.xlsx" in lines


def test_an_empty_period_has_a_plain_text_part_too() -> None:
    report, _ = rendered([])
    assert "本期没有新建、解决或关闭的事件单。" in report.email_text
    assert "- 新建事件：0 (" in report.email_text


def test_workbook_cells_are_data_not_formulas() -> None:
    report, _ = rendered(tickets())
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(report.workbook))
    detail = book["工单明细"]
    values = [c.value for row in detail.iter_rows() for c in row]
    cells = [c for row in detail.iter_rows() for c in row if c.value == "=1+1 公式"]
    assert cells and all(c.data_type == "s" for c in cells)
    assert '=HYPERLINK("x")' in values
    assert all(c.data_type != "f" for row in detail.iter_rows() for c in row)


def test_every_mail_of_a_period_has_its_own_key_and_a_retried_send_the_same() -> None:
    key = report_key(DAY, "zh", 0, "a" * 64)
    assert key == report_key(DAY, "zh", 0, "a" * 64)  # a send retried before it succeeded
    others = {report_key(DAY, "en", 0, "a" * 64),  # the English mail
              report_key(DAY, "zh", 1, "a" * 64),  # a resend
              report_key(DAY, "zh", 0, "b" * 64),  # other numbers
              report_key(DAY.next(), "zh", 0, "a" * 64)}
    assert key not in others and len(others) == 4


def test_a_resend_is_a_new_mail_in_the_thread_of_the_periods_first(tmp_path: Path) -> None:
    report, kpis = rendered(tickets())
    archive = ReportArchive(tmp_path, DAY)
    archive.write_json(archive.kpis, kpis.to_dict())
    archive.write_rendered(report, {c.name: content_id(kpis, c) for c in report.charts},
                           {"kpis_digest": "0" * 64, "language": "zh"})
    settings = ReportSettings.from_dict(load_yaml("reports.yaml"))

    ledger = StoreLedger(archive.store, archive.sent_marker)
    first = prepare_email(archive, settings, load_contacts(), ledger.records())
    ledger.record({"message_id": "<first@ops.example.cn>", "key": first.key})
    second = prepare_email(archive, settings, load_contacts(), ledger.records())
    ledger.record({"message_id": "<second@ops.example.cn>", "key": second.key})
    third = prepare_email(archive, settings, load_contacts(), ledger.records())

    assert len({first.key, second.key, third.key}) == 3
    assert first.references == ()
    assert second.references == third.references == ("<first@ops.example.cn>",)
    assert [s["message_id"] for s in ledger.records()] == ["<first@ops.example.cn>",
                                                           "<second@ops.example.cn>"]


def test_a_sent_marker_from_before_the_history_counts_as_one_mail(tmp_path: Path) -> None:
    archive = ReportArchive(tmp_path, DAY)
    archive.write_json(archive.sent_marker, {"message_id": "<old@incident-ops>",
                                             "sent_at": "2026-11-26T00:00:00+00:00"})
    assert [s["message_id"] for s in StoreLedger(archive.store,
                                                 archive.sent_marker).records()] == [
        "<old@incident-ops>"]


def test_sheet_names_fit_excel_and_are_cut_between_words() -> None:
    taken: set[str] = set()
    assert sheet_title("Configuration items by faults and alarms", taken) == \
        "Configuration items by faults"
    assert sheet_title("Configuration items by faults and alarms", taken) == \
        "Configuration items by faul (2)"
    assert sheet_title("a/b:c*d?[e]", taken) == "a b c d e"
    assert len(sheet_title("x" * 40, taken)) == 31


def test_times_in_the_workbook_are_local_to_the_minute() -> None:
    late = Ticket(id="3", subject="秒", status="new", priority="low", system="crm",
                  created=T0 + timedelta(minutes=5, seconds=59, microseconds=123456),
                  updated=T0 + timedelta(minutes=6))
    report, _ = rendered([*tickets(), late])
    detail = pd.read_excel(io.BytesIO(report.workbook), sheet_name="工单明细")
    by_id = detail.set_index(detail["工单号"].astype(str))
    # 19:00 UTC on the 24th is 03:00 on the 25th in Shanghai
    assert pd.Timestamp(by_id.loc["1", "创建时间"]) == pd.Timestamp(datetime(2026, 11, 25, 3, 0))
    assert bool(by_id.loc["1", "SLA 达成"]) is True  # urgent, major impact: 2 h of 2 h is met
    assert pd.Timestamp(by_id.loc["3", "创建时间"]) == pd.Timestamp(datetime(2026, 11, 25, 3, 5))
    urgent = pd.read_excel(io.BytesIO(report.workbook), sheet_name="紧急事件")
    # The KPI lists hold UTC ISO strings; the workbook shows local times.
    assert pd.Timestamp(urgent.loc[0, "创建时间"]) == pd.Timestamp(datetime(2026, 11, 25, 3, 0))


def test_without_a_chinese_font_the_charts_fall_back_to_english(monkeypatch, caplog) -> None:
    from incident_ops.reports import charts

    monkeypatch.setattr(charts, "cjk_font", lambda: None)
    frame = frame_from_tickets(tickets())
    kpis = compute_kpis(frame, DAY, SETTINGS)
    drawn = charts.render_charts(kpis, Labels(VOCAB, "zh"))
    assert drawn and all(c.png.startswith(b"\x89PNG") for c in drawn)
    assert drawn[0].title == "Created and resolved"
    assert "no font with Chinese glyphs" in caplog.text


def test_the_report_shows_response_compliance_in_the_mail_and_the_workbook() -> None:
    items = [tickets()[0].with_changes(responded_at=T0 + timedelta(minutes=5)),  # urgent: met
             tickets()[1]]  # high, nobody picked it up: 20 h late by the day's end
    report, kpis = rendered(items)
    assert (kpis.headline["response_measured"], kpis.headline["response_met"]) == (2, 1)
    assert "响应达成率" in report.email_html and "50.0%" in report.email_html
    assert "响应时长与达成率 (按优先级)" in report.email_html
    book = pd.read_excel(io.BytesIO(report.workbook), sheet_name=None)
    summary = book["概览"].set_index("代码")
    assert summary.loc["response_pct", "本期"] == 0.5  # an Excel percentage: shows 50.0%
    sheet = book["响应时长与达成率"].set_index("代码")
    assert sheet.loc["urgent", "响应达成率 %"] == 1.0 and sheet.loc["high", "达成"] == 0
    detail = book["工单明细"].dropna(subset=["工单号"])
    detail = detail.set_index(detail["工单号"].astype(str))
    assert detail.loc["1", "响应时间"] == pd.Timestamp("2026-11-25 03:05")  # Shanghai time
    assert detail.loc["1", "按时响应"] == 1 and pd.isna(detail.loc["2", "按时响应"])
    english, _ = rendered(items, "en")
    assert "Response target met" in english.email_html


def test_a_report_on_a_year_without_make_up_days_warns_in_the_log(tmp_path: Path,
                                                                   caplog) -> None:
    import logging

    from incident_ops.pipelines.reports import compute
    from incident_ops.reports.frame import snapshot_bytes

    for day, expected in ((date(2027, 3, 3), 1), (date(2026, 11, 25), 0)):
        archive = ReportArchive(tmp_path, Period("daily", day))
        archive.write(archive.snapshot, snapshot_bytes(frame_from_tickets([])))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="incident_ops"):
            compute(archive, SETTINGS)
        warned = [r.getMessage() for r in caplog.records if "SLA calendar" in r.getMessage()]
        assert len(warned) == expected, warned
        assert all("2027" in w for w in warned)
