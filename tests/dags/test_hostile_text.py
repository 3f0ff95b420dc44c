"""Ticket text is data: hostile titles and descriptions through every pipeline (issue 15).

The desk holds what people, monitoring tools and mail gateways put into it: a carriage
return in a title (RT keeps ``\\r`` and drops ``\\n``), a NUL, right-to-left marks, emoji,
``<script>``, header-injection attempts, a 100 KB description. Each pipeline runs over such
tickets against the real RT, SMTP and SMS receivers, and the test reads the outcome where it
lands: every mail is delivered with one clean subject line (no CR/LF, no HTML entities, no
injected header), bodies show the text escaped, the desk is changed as the spec says, and
every report is built (its snapshot reads back the exact text).

Invalid UTF-8 cannot get into the desk through REST2 (RT 5 answers 500, see
``test_rt_refuses_invalid_utf8_at_its_rest_door``); the RT adapter reads any byte a desk
might still send as text (unit tests of the mapping).
"""

from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pandas as pd
import pytest
import requests

from incident_ops.model import TicketDraft
from incident_ops.policy import emergency as flow
from tests.dags.conftest import succeeded
from tests.support import artefacts
from tests.support.airflow_dags import run_dag, task_states, xcom
from tests.support.past import Past, import_past

pytestmark = [pytest.mark.integration, pytest.mark.dags]

# What RT keeps of a hostile title (it drops "\n", keeps "\r").
HOSTILE = ("<script>alert('x')</script> 告警 & \"引号\"\r\nBcc: victim@evil.example\r\n"
           "Subject: injected \u202etxet-LTR\u202c \u200f 🔥🚨 \x00NUL\ttab ‮end")
BIG = ("故障描述 <b>bold</b> & \r\n" * 5000)[:100_000]  # 100 KB description
REPORT_DAY = "2025-03-12"  # reserved for this module's daily report


def stored(text: str) -> str:
    """What RT keeps of a title (no "\\n"), as the adapter reads it (no NUL: PostgreSQL, the
    metadata database of a real deployment, refuses NULs in the plan's XCom)."""
    return text.replace("\n", "").replace("\x00", "")


def make(env: dict[str, Any], name: str, *, status: str, priority: str = "high",
         owner: str = "liu.yang", requester: str = "requester@example.cn",
         **fields: Any) -> str:
    values: dict[str, Any] = {"source": "phone", "category": "fault", "system": "billing",
                              "impact": "medium", "handler_tier": "l2"}
    values.update(fields)
    draft = TicketDraft(queue="Incidents", subject=f"[{env['tag']}] {name} {HOSTILE}",
                        description=BIG, status=status, priority=priority, owner=owner,
                        requester=requester, fields=values,
                        idempotency_key=f"test:{env['tag']}:{name}")
    return env["desk"].create(draft)


def about(env: dict[str, Any], ticket_id: str) -> list[EmailMessage]:
    return [m for m in env["mail"].messages if f"#{ticket_id}" in str(m["Subject"])]


def assert_clean(message: EmailMessage) -> None:
    """One subject line, the title's text as text, nothing injected."""
    subject = str(message["Subject"])
    assert "\r" not in subject and "\n" not in subject and "\x00" not in subject, subject
    assert "&lt;" not in subject and "&amp;" not in subject and "&#" not in subject, subject
    assert message["Bcc"] is None and "victim@evil.example" not in str(message["To"])
    assert all(value is not None for value in message.values())
    for part in message.walk():
        if part.get_content_type() == "text/html":
            html = part.get_content()
            assert "<script>alert" not in html and "\x00" not in html


def test_rt_refuses_invalid_utf8_at_its_rest_door(desk_url):
    """The desk contract behind 'invalid UTF-8': RT 5 will not store it through REST2."""
    body = b'{"Queue":"Incidents","Subject":"bad \xff\xfe utf8","Content":"x"}'
    r = requests.post(f"{desk_url}/REST/2.0/ticket", data=body, auth=("root", "password"),
                      headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code >= 400, (
        f"RT now answers {r.status_code} to a create with invalid UTF-8 in its JSON body "
        "(it answered 500 in request-tracker5 5.0.3+dfsg-3~deb12u7): invalid bytes can reach "
        "the desk, so the adapter's replacement of undecodable text must be checked again")


def test_closure_bounces_asks_and_cascades_hostile_tickets(env):
    complete = {"resolver_role": "l2", "solution": "重启 <进程> & 恢复\r\n第二行",
                "close_code": "self-healed", "config_item": "bill-app-01",
                "completed_at": datetime.now(UTC).replace(microsecond=0),
                "dispatched_by_helpdesk": False}
    alarm = make(env, "alarm", status="resolved", source="monitoring", category="alarm",
                 **complete)
    dup = make(env, "dup", status="new", source="monitoring", category="alarm")
    env["desk"].link_duplicate(dup, alarm)
    asked = make(env, "asked", status="resolved", category="request", requester="z@example.cn",
                 **{**complete, "close_code": "solved", "resolver_role": "helpdesk"})
    bounced = make(env, "bounced", status="resolved", resolver_role="l2")  # no solution
    run = run_dag("incident_closure")
    succeeded(run)
    for tid in (alarm, dup):
        t = env["desk"].get(tid)
        assert (t.status, t.close_code) == ("closed", "self-healed"), tid
        assert "\r" in t.subject
        raw = requests.get(f"{env['url']}/REST/2.0/ticket/{tid}", auth=("root", "password"),
                           timeout=30).json()
        assert "\x00" in raw["Subject"]  # the desk's own text is never rewritten
    assert (env["desk"].get(asked).confirmation, env["desk"].get(bounced).status) == (
        "pending", "assigned-l2")
    [ask] = about(env, asked)
    assert str(ask["To"]) == "z@example.cn"
    assert_clean(ask)
    html = ask.get_body(("html",)).get_content()
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html  # the title, as text
    for message in env["mail"].messages:
        assert_clean(message)
    page = artefacts.read_text(xcom(run, "report")["report"]["html"])
    assert f"#{alarm}" in page and "<script>alert" not in page
    # The plan as XCom stores it: no NUL, which PostgreSQL's JSONB refuses (the whole run
    # would fail on a real deployment's metadata database).
    assert "\\u0000" not in json.dumps(xcom(run, "plan")), "a NUL reached the plan's XCom"


def test_urgent_escalation_and_snapshot_deliver_every_hostile_mail(env):
    urgent = make(env, "urgent", status="assigned-l1", priority="urgent", impact="major",
                  handler_tier="l1", owner="zhang.wei")
    overdue = make(env, "overdue", status="assigned-l1", handler_tier="l1", owner="zhang.wei")
    succeeded(run_dag("urgent_incidents"))
    [mail] = about(env, urgent)
    assert_clean(mail)
    assert "🔥🚨" in str(mail["Subject"]) and "Bcc: victim" in str(mail["Subject"])
    texts = [r.json for r in env["sms"].delivered if f"#{urgent}" in str(r.json["text"])]
    assert len(texts) == 1 and "\r" not in texts[0]["text"] and "\x00" not in texts[0]["text"]
    created = env["desk"].get(overdue).created
    succeeded(run_dag("incident_queue_monitor", logical_date=created + timedelta(hours=8.5)))
    rungs = [m for m in about(env, overdue)]
    assert len(rungs) == 2 and env["desk"].get(overdue).escalation == ("at-risk", "breached")
    for message in rungs:
        assert_clean(message)
    snap = run_dag("incident_queue_snapshot",
                   logical_date=datetime.now(UTC) + timedelta(hours=5))
    succeeded(snap)
    (snapshot,) = [m for m in env["mail"].messages if "Queue snapshot" in str(m["Subject"])]
    assert_clean(snapshot)
    page = artefacts.read_text(xcom(snap, "snapshot")["page"])
    assert f"[{env['tag']}] urgent &lt;script&gt;" in page  # breached by then: listed
    assert "<script>alert" not in page and "\x00" not in page


@pytest.fixture
def report_env(airflow_db, desk_url, embedded_desk, mailbox, tmp_path, monkeypatch):
    monkeypatch.setenv("INCIDENT_OPS_REPORTS_DIR", str(tmp_path / "reports"))
    from incident_ops.airflow.provider.desk_hook import ServiceDeskHook
    from tests.support.airflow_dags import ensure_pool

    ensure_pool()
    day = date.fromisoformat(REPORT_DAY)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=8)
    with ServiceDeskHook() as hook:
        desk = hook.get_desk()
        from incident_ops.desk.port import TicketQuery

        present = {t.idempotency_key for t in desk.search(TicketQuery(
            created_since=start, created_before=start + timedelta(days=1)))}
        wanted = [
            Past(key=f"hostile-report:{n}", subject=f"{n} {stored(HOSTILE)}",
                 description=BIG, priority=p, created=start + timedelta(hours=h),
                 status="resolved" if n != "open" else "in-progress",
                 resolved=start + timedelta(hours=h + 2) if n != "open" else None,
                 fields={"system": "crm", "category": "fault", "source": "monitoring",
                         "config_item": "CRM <APP> \r 01", "faulty_vendor": "厂商\x00A",
                         **({"completed_at": start + timedelta(hours=h + 2)}
                            if n != "open" else {})})
            for n, p, h in (("first", "urgent", 2), ("second", "high", 5), ("open", "urgent", 7))]
        missing = [p for p in wanted if p.key not in present]
        import_past(embedded_desk, missing)
    yield {"mail": mailbox, "reports": tmp_path / "reports"}


def test_daily_report_is_built_and_mailed_over_hostile_tickets(report_env):
    run = run_dag("incident_report_daily", conf={"date": REPORT_DAY})
    assert set(task_states(run).values()) == {"success"}, task_states(run)
    [mail] = report_env["mail"].find(subject_contains=REPORT_DAY)
    assert_clean(mail)
    folder = f"daily/{REPORT_DAY}"
    stored_keys = artefacts.store().keys(folder)
    for name in ("report.html", "email.html", "workbook.xlsx", "kpis.json", "tickets.csv.gz"):
        assert f"{folder}/{name}" in stored_keys, name
    # The snapshot holds the desk's text exactly (CR, NUL, marks and all).
    from incident_ops.reports.frame import snapshot_from_bytes

    snapshot = artefacts.read_bytes(f"{folder}/tickets.csv.gz")
    frame = snapshot_from_bytes(snapshot)
    assert f"first {stored(HOSTILE)}" in set(frame["subject"])
    kpis = artefacts.read_json(f"{folder}/kpis.json")
    assert (kpis["headline"]["created"], kpis["headline"]["resolved"]) == (3, 2)
    assert len(frame) == 3  # one row per ticket: no text split a row
    # The workbook opens; text Excel cannot hold is shown, not dropped or fatal.
    [xlsx] = [p for p in mail.iter_attachments() if (p.get_filename() or "").endswith(".xlsx")]
    book = pd.read_excel(io.BytesIO(bytes(xlsx.get_content())), sheet_name=None)
    titles = {str(v) for sheet in book.values() for col in sheet.columns
              for v in sheet[col].dropna().tolist() if "first" in str(v)}
    assert any("<script>alert('x')</script>" in t for t in titles), titles
    assert "<script>alert" not in artefacts.read_text(f"{folder}/report.html")
    assert gzip.decompress(snapshot)  # readable as written


def test_emergency_runs_over_a_hostile_title_and_hostile_answers(env):
    from tests.dags.test_emergency_response import (
        LEAD_USER,
        TEAM_USER,
        lifted_form,
    )
    from tests.dags.test_emergency_response import (
        run as run_emergency,
    )

    tid = make(env, "emergency", status="assigned-l2", priority="urgent", system="crm",
               impact="high")
    env["tmp"] = env["reports"].parent
    symptoms = f"全省 CRM 无法登录\r\n{HOSTILE}"
    [result] = run_emergency(env, {
        "conf": {"ticket_id": tid, "system": "crm", "impact": "high", "symptoms": symptoms,
                 "reporter": "li.na"},
        "answers": {"covered": {"chosen": [flow.COVERED_PLAN], "by": TEAM_USER},
                    "plan.follow_plan": {"chosen": [flow.STEPS_DONE],
                                         "params": {"notes": HOSTILE}, "by": LEAD_USER},
                    "plan.lifted": {"chosen": [flow.LIFTED],
                                    "params": {**lifted_form(), "recovery_note": HOSTILE},
                                    "by": TEAM_USER}}})
    assert result.get("state") == "success", result
    mails = about(env, tid)
    assert len(mails) >= 4, [str(m["Subject"]) for m in mails]
    for message in mails:
        assert_clean(message)
    paths = result["xcom"]["aftermath.report"]["paths"]
    report = artefacts.read_json(paths["json"])
    assert report["symptoms"] == symptoms and report["recovery_note"] == HOSTILE
    assert "<script>alert" not in artefacts.read_text(paths["html"])
    assert artefacts.read_bytes(paths["pdf"])[:5] == b"%PDF-"
    problem = env["desk"].get(str(result["xcom"]["aftermath.problem_ticket"]))
    assert problem.queue == "Problems" and "\x00" not in problem.subject
