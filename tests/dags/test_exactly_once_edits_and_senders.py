"""The fault matrix, continued (``test_exactly_once.py`` has the scenario and the kills): a
person's edit between fetch and apply on a master, a duplicate and a rejected ticket; the
urgent, monitor and emergency pipelines with the SMS gateway answering 5xx and the mail
server refusing. A file of its own so that ``--dist loadfile`` gives it another worker."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
import requests

from incident_ops.desk.port import TicketQuery
from incident_ops.model import TicketDraft
from incident_ops.policy.plan import action_key
from tests.dags.test_exactly_once import _applied, build, env, rest, until_quiet
from tests.support.airflow_dags import run_dag, task_states

pytestmark = [pytest.mark.integration, pytest.mark.dags]

__all__ = ["env"]  # the fixture, shared with test_exactly_once.py


# ------------------------------------------------------------ a person between fetch and apply
def edit_during_apply(env: dict[str, Any], monkeypatch: Any, ticket_id: str,
                      body: dict[str, Any]) -> None:
    from incident_ops.engine import Applier

    real = Applier.apply

    def person_then_apply(self: Any, plan: Any, known_keys: Any = None) -> Any:
        monkeypatch.setattr(Applier, "apply", real)
        requests.put(f"{env['url']}/REST/2.0/ticket/{ticket_id}", json=body,
                     auth=("root", "password"), timeout=30).raise_for_status()
        return real(self, plan, known_keys)

    monkeypatch.setattr(Applier, "apply", person_then_apply)


def test_a_master_changed_mid_run_keeps_its_family_together(env, monkeypatch):
    ids = build(env)
    edit_during_apply(env, monkeypatch, ids["alarm"], {"CustomFields": {"Close Code": "solved"}})
    first = run_dag("incident_closure")
    apply_record = [o for o in _applied(first)["outcomes"] if o["ticket_id"] in
                    (ids["alarm"], ids["alarm_dup"])]
    assert {o["ticket_id"]: o["outcome"] for o in apply_record} == {
        ids["alarm"]: "stale", ids["alarm_dup"]: "waiting"}
    assert env["desk"].get(ids["alarm_dup"]).status == "resolved"  # not closed with old code
    until_quiet()
    family = [env["desk"].get(ids[r]) for r in ("alarm", "alarm_dup", "alarm_open_dup")]
    assert {(t.status, t.close_code) for t in family} == {("closed", "solved")}


def test_a_duplicate_changed_mid_run_closes_later_with_its_masters_code(env, monkeypatch):
    ids = build(env)
    edit_during_apply(env, monkeypatch, ids["alarm_dup"], {"Subject": "edited by a person"})
    run_dag("incident_closure")
    assert env["desk"].get(ids["alarm"]).status == "closed"
    assert env["desk"].get(ids["alarm_dup"]).status == "resolved"
    until_quiet()
    dup = env["desk"].get(ids["alarm_dup"])
    assert (dup.status, dup.close_code) == ("closed", "self-healed")


def test_a_rejection_withdrawn_mid_run_leaves_no_copy(env, monkeypatch):
    ids = build(env)
    edit_during_apply(env, monkeypatch, ids["rejected"],
                      {"CustomFields": {"Confirmation": "confirmed"}})
    run_dag("incident_closure")
    key = action_key("reopen", ids["rejected"])
    assert list(env["desk"].search(TicketQuery(queue=None, fields={"idempotency_key": key}))) == []
    until_quiet()
    t = env["desk"].get(ids["rejected"])
    assert (t.status, t.close_code) == ("closed", "solved")
    assert list(env["desk"].search(TicketQuery(queue=None, fields={"idempotency_key": key}))) == []


# ------------------------------------------------------- urgent, monitor and emergency
def open_ticket(env: dict[str, Any], subject: str, *, priority: str, **fields: Any) -> str:
    values: dict[str, Any] = {"source": "phone", "category": "fault", "system": "billing",
                              "impact": "medium", "handler_tier": "l1", **fields}
    tag = uuid.uuid4().hex[:8]
    return env["desk"].create(TicketDraft(
        queue="Incidents", subject=f"[{tag}] {subject}", description=subject,
        status="assigned-l1", priority=priority, owner="zhang.wei",
        requester="caller@example.cn", fields=values, idempotency_key=f"matrix:{tag}"))


def about(env: dict[str, Any], tid: str) -> list[Any]:
    return [m for m in env["mail"].messages if f"#{tid} " in str(m["Subject"])]


def sms_about(env: dict[str, Any], tid: str) -> list[Any]:
    return [r for r in env["sms"].delivered if f"#{tid}" in str(r.json)]


def test_an_sms_gateway_failing_for_a_run_loses_no_urgent_notice(env):
    tid = open_ticket(env, "计费批价中断", priority="urgent", impact="major")
    env["sms"].fail_next(100, status=503)
    first = run_dag("urgent_incidents")
    assert task_states(first)["apply"] == "failed"
    assert len(about(env, tid)) == 1 and sms_about(env, tid) == []  # the mail went out
    assert env["desk"].get(tid).urgent_notified == "urgent"  # the desk records it once
    env["sms"].reset()
    for _ in range(2):
        run_dag("urgent_incidents")
    assert len(about(env, tid)) == 1
    (sms,) = sms_about(env, tid)
    assert sms.header("Idempotency-Key").startswith("urgent:")
    comments = rest(env, f"/ticket/{tid}/history", fields="Type", per_page=100)["items"]
    assert sum(1 for h in comments if h.get("Type") == "Comment") == 1


def test_a_mail_server_refusing_for_a_run_loses_no_escalation(env):
    tid = open_ticket(env, "营业厅开户缓慢", priority="high")
    created = env["desk"].get(tid).created
    env["mail"].refuse()
    first = run_dag("incident_queue_monitor", logical_date=created + timedelta(hours=6.5))
    env["mail"].accept()
    assert task_states(first)["apply"] == "failed"
    assert env["desk"].get(tid).escalation == ("at-risk",)  # committed, the mail owed
    assert about(env, tid) == []
    for hours in (6.6, 6.7):  # the next scheduled runs, the same rung not due again
        run_dag("incident_queue_monitor", logical_date=created + timedelta(hours=hours))
    (mail,) = about(env, tid)
    assert "at-risk" in str(mail["Subject"])
    assert env["desk"].get(tid).escalation == ("at-risk",)


def test_an_emergency_goes_on_while_the_mail_server_refuses_and_its_mails_follow(env):
    from incident_ops.policy import emergency as flow
    from tests.dags.test_emergency_response import TEAM_USER, lifted_form, run

    tid = open_ticket(env, "CRM 前台无法登录", priority="urgent", system="crm", impact="high")
    switch = env["tmp"] / "smtp-refuses"
    switch.write_text("refuse")
    env["mail"].switch = switch
    [result] = run(env, {"conf": {"ticket_id": tid, "system": "crm", "impact": "high",
                                  "symptoms": "全省营业厅 CRM 无法登录，受理失败",
                                  "reporter": "li.na"},
                         "mail_back_before": {"switch": str(switch), "task": "covered"},
                         "answers": {"covered": {"chosen": [flow.COVERED_PLAN], "by": TEAM_USER},
                                     "plan.follow_plan": {"chosen": [flow.STEPS_DONE],
                                                          "by": TEAM_USER},
                                     "plan.lifted": {"chosen": [flow.LIFTED],
                                                     "params": lifted_form(), "by": TEAM_USER}}})
    assert result.get("state") == "success", result
    assert env["mail"].refused >= 3  # notify_start tried, retried, then let the run go on
    hq = [m for m in env["mail"].find(to="noc@group-hq.example.cn")
          if str(m["Subject"]).startswith("【应急启动】")]
    assert len(hq) == 1  # the start report, owed, went out with a later step: once
    keys = [str(r.json) for r in env["sms"].delivered]
    asks = [k for k in keys if "emergency-ask:" in k]  # each question told to its people
    assert len(keys) - len(asks) == 1  # the start SMS, once
    assert len(asks) == len(set(asks)) == 3  # covered, follow_plan, lifted: once each
