"""The emergency's decisions (101) as plans: who is told, what is created, once per key.

Pure: the brief and the answers in, a ``Plan`` out; the engine's own tests cover applying it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from emergency_sample import START, answer, at, brief, rounds

from incident_ops.model import Ticket
from incident_ops.policy import emergency as em
from incident_ops.policy.plan import CREATE, NOTIFY, RECORD, Plan

PATHS = {"html": "/r/EMR-4711.html", "print": "/r/EMR-4711-print.html", "json": "/r/x.json"}


def every_plan() -> list[Plan]:
    b = brief()
    rs, _, _ = rounds()
    s2 = rs[2].solution
    assert s2 is not None
    incident = Ticket(id="4711", subject="s", status="assigned-l2", priority="urgent",
                      created=START, updated=START)
    return [em.decide_start(b, "r"), em.decide_route(b, "r", em.ROUTE_PLAN),
            em.decide_route(b, "r", em.ROUTE_VENDORS, 1, rs[:1]),
            em.decide_carry_out(b, "r", 2, replace(s2, group_support_needed=True),
                                rs[2].approvals),
            em.decide_escalation(b, "r", rs),
            em.decide_lifted(b, "r", rs[2].lifted, incident, "Asia/Shanghai"),  # type: ignore[arg-type]
            em.decide_report(b, "r", {"number": "EMR-4711", "title_zh": "重大事件报告",
                                      "title_en": "Major Incident Report"}, PATHS),
            em.decide_major_report(b, "r", rs, {"number": "EMR-4711"}, PATHS),
            em.decide_problem(b, "r", rs)]


def test_every_side_effect_is_keyed_on_the_incident_and_written_on_a_fresh_read():
    actions = [a for p in every_plan() for a in p.actions]
    assert len({a.key for a in actions}) == len(actions)  # nothing shares a key
    assert {a.ticket_id for a in actions} == {"4711"}
    assert all(a.expected_version is None for a in actions)
    assert all(a.key.startswith("emergency-") for a in actions)


def test_plans_survive_the_trip_through_xcom():
    for plan in every_plan():
        again = Plan.from_dict(json.loads(json.dumps(plan.to_dict(), default=str)))
        assert again.to_dict() == plan.to_dict()


def test_the_start_tells_team_leaders_group_and_plan_list_by_mail_and_the_team_by_sms():
    (action,) = em.decide_start(brief(), "r").actions
    mail, sms = action.notices
    assert action.kind == NOTIFY and action.step == "101.1"
    assert {"noc@group-hq.example.cn", "zheng.gang@ops.example.cn"} <= set(mail.to)
    assert sms.channel == "sms" and sms.to == brief().to.team_phones
    assert len(mail.to) == len(set(mail.to))


def test_an_approved_change_raises_a_change_request_and_asks_the_group_when_needed():
    plan = every_plan()[3]
    kinds = [(a.kind, a.rule) for a in plan.actions]
    assert kinds == [(NOTIFY, "emergency.hq-approved"), (CREATE, "emergency.change-request"),
                     (NOTIFY, "emergency.group-support")]
    create = plan.actions[1]
    assert create.create is not None and create.create.queue == "Change Requests"
    assert "{created_id}" in str(create.comment)


def test_a_plain_solution_raises_no_change_and_asks_nobody_at_the_group():
    b = brief()
    plan = em.decide_carry_out(b, "r", 1, em.Solution("restart"), ())
    assert [a.rule for a in plan.actions] == ["emergency.hq-approved"]


def test_the_recovery_time_goes_on_the_incident_unless_it_already_holds_one():
    b = brief()
    lifted = answer("101.5", em.Q_LIFTED, em.LIFTED, "孙敏", 118, recovered_at="2026-11-26 10:58")
    empty = Ticket(id="4711", subject="s", status="assigned-l2", priority="urgent",
                   created=START, updated=START)
    record = em.decide_lifted(b, "r", lifted, empty, "Asia/Shanghai").actions[1]
    assert record.kind == RECORD
    assert record.fields == {"recovered_at": datetime(2026, 11, 26, 2, 58, tzinfo=UTC)}
    kept = em.decide_lifted(b, "r", lifted, replace(empty, recovered_at=at(100)),
                            "Asia/Shanghai").actions[1]
    assert kept.fields == {} and "kept" in str(kept.comment)
    unreadable = replace(lifted, params={"recovered_at": "昨天"})
    asked = em.decide_lifted(b, "r", unreadable, empty, "Asia/Shanghai").actions[1]
    assert asked.fields == {} and "YYYY-MM-DD HH:MM" in str(asked.comment)


def test_only_a_major_emergency_files_a_major_incident_report_with_the_report_attached():
    rs, _, _ = rounds()
    (action,) = every_plan()[7].actions
    assert action.kind == CREATE and action.create is not None
    assert action.create.queue == "Major Incident Reports"
    assert [a["name"] for a in action.attachments] == ["EMR-4711.html", "EMR-4711-print.html"]
    lesser = em.decide_major_report(brief(impact="high"), "r", rs, {"number": "x"}, PATHS)
    assert lesser.actions == []


def test_the_report_mail_carries_both_renderings():
    (action,) = every_plan()[6].actions
    (mail,) = action.notices
    assert [a["key"] for a in mail.attachments] == [PATHS["html"], PATHS["print"]]
    assert mail.to[0] == "wang.fang@ops.example.cn"


def test_every_time_of_the_lifted_notice_is_local_and_labelled():
    b = brief()  # Asia/Shanghai
    lifted = answer("101.5", em.Q_LIFTED, em.LIFTED, "孙敏", 118, recovered_at="2026-11-26 10:58")
    empty = Ticket(id="4711", subject="s", status="assigned-l2", priority="urgent",
                   created=START, updated=START)
    hq, record = em.decide_lifted(b, "r", lifted, empty).actions
    what = hq.notices[0].context["what"]
    # 03:03 UTC is 11:03 in Shanghai; the recovery time typed is already local.
    assert "(孙敏, 2026-11-26 11:03 (Asia/Shanghai))" in what
    assert "business recovered: 2026-11-26 10:58 (Asia/Shanghai)" in what
    assert "UTC" not in what and "UTC" not in str(record.comment)
    utc_deployment = replace(b, tz="UTC")
    hq, _ = em.decide_lifted(utc_deployment, "r", lifted, empty).actions
    assert "2026-11-26 03:03 (UTC)" in hq.notices[0].context["what"]


def test_a_pdf_is_what_the_report_mail_and_the_major_incident_report_carry_when_there_is_one():
    with_pdf = {**PATHS, "pdf": "/r/EMR-4711.pdf"}
    (mail,) = em.decide_report(brief(), "r", {"number": "EMR-4711"}, with_pdf).actions[0].notices
    assert [(a["name"], a["mime"]) for a in mail.attachments] == [
        ("EMR-4711.html", "text/html"), ("EMR-4711.pdf", "application/pdf")]
    rs, _, _ = rounds()
    (mir,) = em.decide_major_report(brief(), "r", rs, {"number": "EMR-4711"}, with_pdf).actions
    assert [a["name"] for a in mir.attachments] == ["EMR-4711.html", "EMR-4711.pdf"]
    assert "《重大事件报告》 EMR-4711 (pdf)" in [a["note"] for a in mir.attachments]


def test_a_system_or_impact_other_than_the_tickets_is_warned_about_not_refused():
    ticket = Ticket(id="4711", subject="s", status="assigned-l2", priority="urgent",
                    created=START, updated=START, system="crm", impact="high")
    assert em.input_warnings(ticket, "crm", "high") == []
    system, impact = em.input_warnings(ticket, "billing", "major")
    assert "the trigger chose system 'billing' but incident #4711 records 'crm'" in system
    assert "impact 'major' but the incident records 'high'" in impact
    unknown = replace(ticket, system=None)
    assert "records no system" in em.input_warnings(unknown, "crm", "high")[0]


def test_answers_name_people_as_contacts_yaml_does_not_by_login():
    payload = {"chosen_options": [em.APPROVE], "responded_at": "2026-11-26T03:00:00+00:00",
               "responded_by_user": {"id": "zheng.gang", "name": "zheng.gang"}}
    named = em.Answer.from_xcom("101.4", "q", payload, brief().names())
    assert named is not None and named.by == "郑刚 (省中心副主任)"
    stranger = {**payload, "responded_by_user": {"id": "guest", "name": "Guest"}}
    assert em.Answer.from_xcom("101.4", "q", stranger, brief().names()).by == "Guest"
