"""urgent_incidents, incident_queue_monitor and incident_queue_snapshot end to end (100.5, 100.8).

dag.test() against the real RT desk, SMTP receiver and SMS receiver. The ladder test moves
the run's own time (its logical date) forward, the way a backfill replays a past period:
the policy reads time from the run, never from the clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from incident_ops.model import TicketDraft
from tests.dags.conftest import mails_about, succeeded
from tests.support import artefacts
from tests.support.airflow_dags import run_dag, xcom

pytestmark = [pytest.mark.integration, pytest.mark.dags]


def make_open(env, subject: str, *, priority: str = "high", **fields: Any) -> str:
    values: dict[str, Any] = {"source": "phone", "category": "fault", "system": "billing",
                              "impact": "medium", "handler_tier": "l1"}
    values.update(fields)
    draft = TicketDraft(queue="Incidents", subject=f"[{env['tag']}] {subject}",
                        description=subject, status="assigned-l1", priority=priority,
                        owner="zhang.wei", requester="caller@example.cn", fields=values,
                        idempotency_key=f"test:{env['tag']}:{subject}")
    return env["desk"].create(draft)


def test_urgent_ticket_is_notified_exactly_once_across_three_runs(env):
    tid = make_open(env, "计费系统全省批价中断", priority="urgent", impact="major")
    for _ in range(3):
        succeeded(run_dag("urgent_incidents"))
    mails = mails_about(env, tid)
    assert len(mails) == 1
    mail = mails[0]
    assert {"incident.manager@ops.example.cn", "wu.hua@ops.example.cn"} <= set(
        str(mail["To"]).replace(" ", "").split(","))
    body = mail.get_body(("html",)).get_content()
    # major impact: the emergency process applies, with a ready command for this ticket
    assert "airflow dags trigger emergency_response" in body
    assert f"&#34;ticket_id&#34;: &#34;{tid}&#34;" in body
    texts = [r.json for r in env["sms"].requests if f"#{tid}" in str(r.json)]
    assert len(texts) == 1 and "13800000031" in str(texts[0])
    ticket = env["desk"].get(tid)
    assert ticket.urgent_notified == "urgent"


def test_ticket_raised_to_urgent_later_is_notified_then(env):
    tid = make_open(env, "短信网关发送延迟", priority="high", system="sms-gw")
    succeeded(run_dag("urgent_incidents"))
    assert mails_about(env, tid) == []
    r = requests.put(f"{env['url']}/REST/2.0/ticket/{tid}", json={"Priority": 95},
                     auth=("root", "password"), timeout=30)
    assert r.status_code == 200
    succeeded(run_dag("urgent_incidents"))
    assert len(mails_about(env, tid)) == 1


def test_overdue_ticket_climbs_rung_by_rung_and_stops_when_resolved(env):
    tid = make_open(env, "营业厅开户缓慢", priority="high")
    created = env["desk"].get(tid).created
    seen: list[str] = []
    for hours, rung in [(6.5, "at-risk"), (8.5, "breached"), (10.5, "convene")]:
        run = run_dag("incident_queue_monitor", logical_date=created + timedelta(hours=hours))
        succeeded(run)
        ticket = env["desk"].get(tid)
        seen.append(rung)
        assert ticket.escalation == tuple(seen), (hours, ticket.escalation)
        subjects = [str(m["Subject"]) for m in mails_about(env, tid)]
        assert len(subjects) == len(seen) and rung in subjects[-1]
    experts = [m for m in mails_about(env, tid) if "convene" in str(m["Subject"])]
    assert str(experts[0]["To"]).replace(" ", "") == \
        "chen.jing@ops.example.cn,zhao.lei@ops.example.cn"
    # the same time replayed: nothing fires twice
    succeeded(run_dag("incident_queue_monitor", logical_date=created + timedelta(hours=10.6)))
    assert len(mails_about(env, tid)) == 3
    requests.put(f"{env['url']}/REST/2.0/ticket/{tid}", json={"Status": "resolved"},
                 auth=("root", "password"), timeout=30).raise_for_status()
    succeeded(run_dag("incident_queue_monitor", logical_date=created + timedelta(hours=20)))
    assert env["desk"].get(tid).escalation == ("at-risk", "breached", "convene")
    assert len(mails_about(env, tid)) == 3


def test_queue_snapshot_is_mailed_to_the_incident_manager(env):
    tid = make_open(env, "经分报表延迟", priority="urgent", system="dw")
    run = run_dag("incident_queue_snapshot",
                  logical_date=datetime.now(UTC) + timedelta(hours=5))
    succeeded(run)
    result = xcom(run, "snapshot")
    page = artefacts.read_text(result["page"])
    assert f"[{env['tag']}] 经分报表延迟" in page  # breached after 5 h: listed by name
    assert result["breached"] >= 1 and result["open"] >= 1
    (mail,) = [m for m in env["mail"].messages if "Queue snapshot" in str(m["Subject"])]
    assert str(mail["To"]) == "incident.manager@ops.example.cn"
    assert f"{tid}" in mail.get_body(("html",)).get_content()


def test_monitor_and_snapshot_warn_when_the_coming_year_lacks_make_up_days(env, caplog):
    """holidays 0.109 knows 2027's holidays but none of its make-up working days: from
    warn_days_ahead (90) before 2027 the monitor's run log and plan report and the queue
    snapshot say so; in June they do not."""
    import logging

    make_open(env, "日历告警检查", priority="medium")
    late = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    with caplog.at_level(logging.WARNING, logger="incident_ops"):
        run = run_dag("incident_queue_monitor", conf={"dry_run": True}, logical_date=late)
    succeeded(run)
    (warning,) = xcom(run, "plan")["plan"]["warnings"]
    assert "2027" in warning and "extra_workdays" in warning
    assert any("SLA calendar" in r.getMessage() and "2027" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]
    page = artefacts.read_text(xcom(run, "report")["report"]["html"])
    assert "警告 / Warnings (1)" in page and "holiday data for 2027 is incomplete" in page

    snap = run_dag("incident_queue_snapshot", logical_date=late)
    succeeded(snap)
    result = xcom(snap, "snapshot")
    assert len(result["warnings"]) == 1 and "2027" in result["warnings"][0]
    assert "holiday data for 2027 is incomplete" in artefacts.read_text(result["page"])

    june = run_dag("incident_queue_monitor", conf={"dry_run": True},
                   logical_date=datetime(2026, 6, 1, 8, 0, tzinfo=UTC))
    succeeded(june)
    assert xcom(june, "plan")["plan"]["warnings"] == []
    assert "Warnings" not in artefacts.read_text(xcom(june, "report")["report"]["html"])
