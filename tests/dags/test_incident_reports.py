"""incident_report_daily end to end: dag.test() against the real RT desk and the SMTP receiver.

The report covers 2025-06-18 (Asia/Shanghai), a day reserved for this test: its tickets are
imported into the desk with their own past (created, assigned and resolved hours and days
apart) through RT's own Perl API (``tests/support/past.py``; REST2 no longer takes
``Created``), once per desk, under idempotency keys. A ticket in that window that is not
ours fails the test with a clear message instead of skewing the numbers.

The mail is checked as its readers get it: headers (sender's display name, Message-ID on the
sender's domain, resends and the English version threaded under the first mail), the
plain-text part, the HTML in headless Chromium at 400 and 1200 px, and the attached workbook
in pandas and in Gnumeric.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pandas as pd
import pytest

from incident_ops.airflow.provider.senders import DEFAULT_FROM_NAME
from incident_ops.config import load_vocabulary
from incident_ops.desk.port import TicketQuery
from incident_ops.reports.labels import Labels
from tests.support import FROM_EMAIL, artefacts
from tests.support.airflow_dags import ensure_pool, load_dag, run_dag, task_states, xcom
from tests.support.mail import save_html_view
from tests.support.past import Past, import_past
from tests.support.spreadsheet import read_book

pytestmark = [pytest.mark.integration, pytest.mark.dags]

DAG_ID = "incident_report_daily"
# Bump VERSION when FIXTURE changes: tickets are imported once per desk and kept, so a new
# fixture moves to a day two weeks later (same weekday) instead of mixing with the old one.
VERSION = 2
SHIFT = timedelta(days=14 * (VERSION - 1))
DAY = (date(2025, 6, 18) + SHIFT).isoformat()  # a Wednesday
KEY_PREFIX = f"report-test-v{VERSION}:"
TAG = "[报表测试 report-test]"
RECIPIENT = "incident.manager@ops.example.cn"  # reports.yaml daily -> incident_manager


def z(day: int, hour: int, minute: int = 0) -> datetime:
    """A UTC time in June 2025 of the first fixture version, moved by SHIFT."""
    return datetime(2025, 6, day, hour, minute, tzinfo=UTC) + SHIFT


WINDOW = (z(16, 16), z(18, 16))  # the previous day and the reported day, Shanghai midnights


# name: (created UTC, resolved UTC or None, status, priority, fields). Shanghai = UTC+8;
# comments give local times on the reported day (the 18th in version 1).
FIXTURE: dict[str, tuple[datetime, datetime | None, str, str, dict[str, Any]]] = {
    # 01:00 on the 18th; 3 h, urgent with major impact: target 2 h -> breached
    "A": (z(17, 17), z(17, 20), "resolved", "urgent",
          {"impact": "major", "system": "billing", "category": "fault", "source": "monitoring",
           "config_item": "BIL-RATING-01", "faulty_vendor": "思特奇",
           "escalation": ["at-risk", "breached"]}),
    # 09:00; 2 h, high (8 h) -> met
    "B": (z(18, 1), z(18, 3), "resolved", "high",
          {"system": "crm", "category": "alarm", "source": "monitoring",
           "config_item": "CRM-APP-01"}),
    # 23:30 on the 18th: still the 18th in Shanghai
    "C": (z(18, 15, 30), None, "new", "medium", {"system": "crm", "category": "request"}),
    # a duplicate of B
    "D": (z(18, 2), None, "new", "high", {"system": "crm", "category": "alarm"}),
    # 00:10 on the 19th: the next day
    "E": (z(18, 16, 10), None, "new", "high", {"system": "crm"}),
    # created the day before, resolved on the 18th after 24 h (9 business hours) -> met
    "F": (z(17, 2), z(18, 2), "resolved", "medium", {"system": "billing"}),
    # bounced back by the 100.6 completeness check
    "G": (z(18, 3), None, "assigned-l1", "low",
          {"system": "billing", "category": "fault", "handler_tier": "l1",
           "automation": "100.6 completeness · run test", "automation_keys": ["bounce:test"]}),
    # ticket text that must stay text (urgent, so the mail lists it)
    "H": (z(18, 4), None, "in-progress", "urgent",
          {"system": "portal", "category": "fault", "config_item": "WEB-PORTAL-01",
           "faulty_vendor": "浪潮"}),
    # created on the 10th, resolved on the 18th: 198 h, 60 business hours of 72 -> met
    "I": (z(10, 1), z(18, 7), "resolved", "low", {"system": "dw", "category": "request"}),
}
SUBJECTS = {name: f"{TAG} 报表样本 {name}" for name in FIXTURE}
SUBJECTS["H"] = f'{TAG} <script>alert("x")</script> 页面注入'


@pytest.fixture
def env(airflow_db, desk_url, embedded_desk, mailbox, tmp_path, monkeypatch):
    monkeypatch.setenv("INCIDENT_OPS_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.delenv("INCIDENT_OPS_REPORT_LANGUAGE", raising=False)
    ensure_pool()
    from incident_ops.airflow.provider.desk_hook import ServiceDeskHook

    with ServiceDeskHook() as hook:
        ids = ensure_fixture(hook.get_desk(), embedded_desk)
        yield {"ids": ids, "mail": mailbox, "reports": tmp_path / "reports"}


def ensure_fixture(desk: Any, embedded_desk: Any) -> dict[str, str]:
    """Import the fixture tickets that are not in the desk yet; return name -> id."""
    found: dict[str, str] = {}
    earliest = min(created for created, *_ in FIXTURE.values())
    for t in desk.search(TicketQuery(created_since=earliest - timedelta(hours=1),
                                     created_before=WINDOW[1] + timedelta(hours=2))):
        key = t.idempotency_key or ""
        if not key.startswith(KEY_PREFIX):
            pytest.fail(f"ticket #{t.id} ({t.subject!r}, key {key!r}) sits in the window "
                        f"reserved for this test ({DAY}); remove it from the test desk")
        found[key.removeprefix(KEY_PREFIX)] = t.id
    missing = [
        Past(key=KEY_PREFIX + name, subject=SUBJECTS[name], priority=priority,
             created=created, status=status, resolved=resolved,
             fields={**fields, **({"completed_at": resolved} if resolved else {})},
             member_of=KEY_PREFIX + "B" if name == "D" else None)
        for name, (created, resolved, status, priority, fields) in FIXTURE.items()
        if name not in found]
    imported = import_past(embedded_desk, missing)
    found.update({key.removeprefix(KEY_PREFIX): tid for key, tid in imported.items()})
    # The premise of every number below: the desk holds the fixture's own dates.
    for name in ("A", "I"):
        ticket = desk.get(found[name])
        created, resolved = FIXTURE[name][0], FIXTURE[name][1]
        assert (ticket.created, ticket.resolved_at) == (created, resolved), (
            f"ticket {name} (#{ticket.id}) was imported with created {created} and resolved "
            f"{resolved} but the desk holds {ticket.created} and {ticket.resolved_at}")
    return found


def report_mails(mailbox) -> list[EmailMessage]:
    return mailbox.find(to=RECIPIENT, subject_contains=DAY)


def attachment_of(message: EmailMessage) -> bytes:
    [xlsx] = [p for p in message.iter_attachments() if
              (p.get_filename() or "").endswith(".xlsx")]
    return bytes(xlsx.get_content())


def workbook_of(message: EmailMessage) -> dict[str, pd.DataFrame]:
    return pd.read_excel(io.BytesIO(attachment_of(message)), sheet_name=None)


def test_daily_report_is_mailed_once_with_inline_charts_and_a_matching_workbook(
        env, browser, tmp_path):
    run = run_dag(DAG_ID, conf={"date": DAY})
    assert set(task_states(run).values()) == {"success"}, task_states(run)
    ids = env["ids"]

    [message] = report_mails(env["mail"])
    assert "事件管理日报" in str(message["Subject"])
    [sender] = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (DEFAULT_FROM_NAME, FROM_EMAIL)
    first_id = str(message["Message-ID"])
    assert first_id.endswith("@ops.example.cn>")  # the domain of the connection's from_email
    assert message["In-Reply-To"] is None
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "- 新建事件：6 (" in text and "- SLA 达成率：75.0% (" in text
    assert f"#{ids['H']} " in text  # the urgent incidents are listed in the text too
    html_part = message.get_body(preferencelist=("html",))
    html = html_part.get_content()
    # Inline charts: every cid: in the HTML is an image part of the same message.
    cids = set(re.findall(r'src="cid:([^"]+)"', html))
    parts = {str(p["Content-ID"]).strip("<>"): p for p in message.walk() if p["Content-ID"]}
    assert len(cids) >= 4 and cids <= set(parts)
    assert {parts[c].get_content_type() for c in cids} == {"image/png"}
    assert all(parts[c].get_content()[:8] == b"\x89PNG\r\n\x1a\n" for c in cids)
    # Ticket text stays text.
    assert "<script>" not in html and "&lt;script&gt;" in html
    # The mail as a phone and a desktop show it: nothing past the screen's edge.
    page = save_html_view(message, tmp_path / "mail")
    for width in (400, 1200):
        layout = browser.layout(browser.open(page, width=width))
        assert layout.fits() and layout.scroll <= width, (width, layout)

    book = workbook_of(message)
    labels = Labels(load_vocabulary(), "zh")
    summary = book[labels.sheet("summary")].set_index("代码")["本期"]
    kpis = xcom(run, "compute")["headline"]
    for key in ("created", "resolved", "urgent", "major"):
        assert summary[key] == kpis[key], key
    assert summary["sla_pct"] == pytest.approx(kpis["sla_pct"] / 100)  # an Excel percentage
    # Hand-computed for the fixture (see FIXTURE).
    assert summary["created"] == 6 and summary["resolved"] == 4
    assert summary["mean_ttr_h"] == pytest.approx((3 + 2 + 24 + 198) / 4, abs=0.01)
    assert summary["sla_pct"] == 0.75 and summary["urgent"] == 2 and summary["major"] == 1
    assert summary["duplicates"] == 1 and summary["bounced"] == 1
    assert summary["bounce_rate_pct"] == 0.2 and summary["escalated"] == 1
    sla = book[labels.sheet("resolution_priority")].set_index("代码")
    assert sla.loc["urgent", "达成率 %"] == 0.0 and sla.loc["low", "达成率 %"] == 1.0
    systems = book[labels.sheet("volume_system")].set_index("代码")["新建"]
    assert systems.to_dict() == {"crm": 3, "billing": 2, "portal": 1}
    # The same cells as another spreadsheet program shows them.
    xlsx = tmp_path / "attached.xlsx"
    xlsx.write_bytes(attachment_of(message))
    shown = {s.name: s for s in read_book(xlsx, tmp_path / "gnumeric")}
    by_code = shown["概览"].records("代码")
    assert (by_code["sla_pct"]["本期"], by_code["mean_ttr_h"]["本期"]) == ("75.0%", "56.8")
    detail = book[labels.sheet("detail")]
    shown = set(detail["工单号"].dropna().astype(str))
    assert {ids[n] for n in "ABCDFGHI"} <= shown and ids["E"] not in shown
    assert SUBJECTS["H"] in set(detail["标题"])

    stored = artefacts.store().keys(f"daily/{DAY}")
    for name in ("report.html", "email.html", "workbook.xlsx", "kpis.json", "tickets.csv.gz",
                 "sent.json", "charts/trend.png"):
        assert f"daily/{DAY}/{name}" in stored, name
    assert 'src="charts/trend.png"' in artefacts.read_text(f"daily/{DAY}/report.html")

    again = run_dag(DAG_ID, conf={"date": DAY})
    assert xcom(again, "send")["sent"] is False
    assert len(report_mails(env["mail"])) == 1  # the send is synchronous: no mail is late

    # A resend is a new mail (its own Message-ID, so no client drops it as a duplicate)
    # in the thread of the period's first; so is the same report in English.
    forced = run_dag(DAG_ID, conf={"date": DAY, "resend": True})
    assert xcom(forced, "send")["sent"] is True
    english = run_dag(DAG_ID, conf={"date": DAY, "resend": True, "language": "en"})
    assert xcom(english, "send")["thread"] == first_id
    first, second, third = report_mails(env["mail"])
    assert str(third["Subject"]).startswith(f"Incident management daily report {DAY}: 6 created")
    ids_sent = [str(m["Message-ID"]) for m in (first, second, third)]
    assert len(set(ids_sent)) == 3 and ids_sent[0] == first_id
    for follow_up in (second, third):
        assert follow_up["In-Reply-To"] == follow_up["References"] == first_id
    sent = artefacts.read_json(f"daily/{DAY}/sent.json")
    assert sent["first_message_id"] == first_id
    assert [(s["message_id"], s["language"], s["resend"]) for s in sent["sends"]] == [
        (ids_sent[0], "zh", False), (ids_sent[1], "zh", True), (ids_sent[2], "en", True)]


def test_a_desk_outage_fails_the_fetch_and_nothing_is_written_or_sent(env, monkeypatch):
    import json

    from incident_ops.airflow.bootstrap import services
    from incident_ops.airflow.tasks.report_tasks import fetch_task
    from incident_ops.desk.port import DeskError
    from incident_ops.reports.archive import IncompleteReport, ReportArchive
    from incident_ops.reports.periods import Period
    from tests.support import free_port

    dead = {"conn_type": "servicedesk", "host": f"http://127.0.0.1:{free_port()}",
            "login": "root", "password": "password",
            "extra": {"backend": "rt5", "timeout": 2}}
    monkeypatch.setenv("AIRFLOW_CONN_SERVICEDESK_DEFAULT", json.dumps(dead))
    context = {"params": {"date": "2025-06-11"}, "dag_run": _Run(),
               "data_interval_end": datetime.now(UTC)}
    with pytest.raises(DeskError), services(context) as s:
        fetch_task("daily", s)
    archive = ReportArchive(artefacts.store(), Period.from_dict(
        {"kind": "daily", "first_day": "2025-06-11", "tz": "Asia/Shanghai"}))
    assert not archive.store.exists(archive.snapshot)
    assert archive.store.keys(archive.folder) == []
    with pytest.raises(IncompleteReport):
        archive.read_manifest()  # what send reads first: no manifest, no mail
    assert env["mail"].messages == []
    # The outage is the task's to retry (with backoff), not the report's to paper over.
    assert load_dag(DAG_ID).get_task("fetch").retries >= 1


def test_three_report_dags_share_one_shape(airflow_db) -> None:
    defaults = {"daily": "30 7 * * *", "weekly": "0 8 * * 1", "monthly": "0 8 1 * *"}
    for kind, cron in defaults.items():
        dag = load_dag(f"incident_report_{kind}")
        assert [t.task_id for t in dag.topological_sort()] == ["fetch", "compute", "render",
                                                                "send"]
        assert dag.get_task("fetch").pool == "servicedesk"
        assert (dag.timetable.summary, str(dag.timetable._timezone)) == (cron, "Asia/Shanghai")
        assert {"date", "resend", "language"} <= set(dag.params)


class _Run:
    dag_id, run_id = DAG_ID, "manual__outage"
