"""The 101.6 aftermath report and the emergency's pure decisions (keys, rounds, tickets)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from emergency_sample import START, at, brief, rounds
from factories import CONTACTS

from incident_ops.model import Ticket
from incident_ops.policy import emergency as flow
from incident_ops.policy import emergency_records as records
from incident_ops.policy.contingency import Coverage
from incident_ops.reports.emergency_report import render_report, report_context, write_report

GENERATED = datetime(2026, 11, 26, 3, 30, tzinfo=UTC)


def context(**over):
    data = brief(**over)
    rs, decisions, notes = rounds()
    return report_context(data, rs, decisions, notes, generated_at=GENERATED)


def test_a_major_emergency_is_titled_major_incident_report():
    ctx = context()
    assert (ctx["title_zh"], ctx["title_en"]) == ("重大事件报告", "Major Incident Report")
    assert ctx["number"] == "EMR-4711-20261126"
    html = render_report(ctx)
    assert "《重大事件报告》" in html and "Major Incident Report" in html


def test_a_lesser_emergency_gets_the_plain_aftermath_title():
    assert context(impact="high")["title_zh"] == "应急处置报告"


def test_the_report_says_when_it_was_lifted_and_how_the_business_recovered():
    ctx = context()
    # Local times, each labelled with the deployment's zone (01:05 UTC is 09:05 there).
    assert ctx["started"] == "2026-11-26 09:05 (Asia/Shanghai)"
    assert ctx["lifted"] == "2026-11-26 11:03 (Asia/Shanghai)" and ctx["lifted_by"] == "孙敏"
    assert ctx["duration"] == "1 小时 58 分 / 1 h 58 min"
    assert ctx["recovered_at"] == "2026-11-26 10:58 (Asia/Shanghai)"
    assert "99.6%" in ctx["recovery_note"]
    assert ctx["solution"].startswith("回退昨晚上线的缴费网关版本")
    assert ctx["route"].startswith("先按预案处置，后组织厂商")


def test_the_timeline_lists_who_decided_what_in_time_order():
    ctx = context()
    times = [e["at"] for e in ctx["timeline"]]
    assert times == sorted(times)
    first, *_ = ctx["timeline"]
    assert (first["step"], first["who"]) == ("101", "sun.min")
    rejected = [e for e in ctx["timeline"] if "Reject" in e["what"]]
    assert [(e["who"], e["at"]) for e in rejected] == [("郑刚", "2026-11-26 10:03:00")]
    lifted = ctx["timeline"][-1]
    assert lifted["who"] == "孙敏" and "业务恢复: 2026-11-26 10:58" in lifted["what"]


def test_rounds_show_approvals_changes_and_outcomes():
    plan_row, first, second = context()["rounds"]
    assert plan_row["label"] == "预案 / plan" and plan_row["outcome"] == "未解除 / not lifted"
    assert first["outcome"] == "方案驳回 / rejected"
    assert first["approvals"][1].startswith("郑刚: 驳回 / rejected")
    assert second["change_request"] == "4712" and second["outcome"] == "已解除 / lifted"


def test_the_printable_form_is_a4_with_a_sign_off_and_the_screen_form_is_not():
    ctx = context()
    screen, paper = render_report(ctx), render_report(ctx, printable=True)
    assert "@page { size: A4" in paper and "应急组长 / Team leader" in paper
    assert 'class="sign"' not in screen and "@media print" in screen


def test_values_from_people_are_escaped():
    ctx = context(symptoms="<script>alert(1)</script> 缴费失败")
    html = render_report(ctx)
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html


def test_write_report_leaves_screen_print_and_json_files(tmp_path):
    ctx = {**context(), "emergency_id": "manual__2026-11-26T08:58:52.104020+00:00"}
    paths = write_report(ctx, tmp_path)
    assert sorted(paths) == ["html", "json", "print"]
    stem = "EMR-4711-20261126_manual__2026-11-26T08_58_52.104020_00_00"  # no suffix lost
    assert [Path(paths[k]).name for k in ("html", "print", "json")] == [
        f"{stem}.html", f"{stem}-print.html", f"{stem}.json"]
    data = json.loads((tmp_path / paths["json"]).read_text(encoding="utf-8"))
    assert data["number"] == "EMR-4711-20261126" and len(data["rounds"]) == 3


# -------------------------------------------------------------------- pure decisions
def test_keys_are_deterministic_and_name_what_they_guard():
    b = brief()
    assert flow.key(b, "hq-approved", 2) == flow.key(b, "hq-approved", 2)
    assert flow.key(b, "hq-approved", 2) != flow.key(b, "hq-approved", 3)
    other = replace(b, emergency_id="another run")
    assert flow.key(b, "problem") != flow.key(other, "problem")
    assert flow.key(b, "problem").startswith("emergency-problem:")


def test_the_brief_survives_the_trip_through_xcom():
    b = brief()
    assert flow.Brief.from_dict(json.loads(json.dumps(b.to_dict()))) == replace(
        b, incident=replace(b.incident, updated=b.incident.created, system=None, impact=None))


def test_an_emergency_runs_on_an_open_incident_only():
    ticket = Ticket(id="9", subject="s", status="closed", priority="urgent", created=START,
                    updated=START)
    with pytest.raises(flow.EmergencyParamError, match="param 'ticket_id'.*not open"):
        flow.check_ticket(ticket)
    with pytest.raises(flow.EmergencyParamError, match="not an incident"):
        flow.check_ticket(replace(ticket, status="new", queue="Problems"))
    flow.check_ticket(replace(ticket, status="in-progress"))


@pytest.mark.parametrize("given, expected", [
    ("someone@example.cn", "someone@example.cn"),
    ("li.na", "li.na@ops.example.cn"),  # contacts key
    ("sun.min", "incident.manager@ops.example.cn"),  # desk user
])
def test_the_reporter_resolves_to_an_address(given, expected):
    assert flow.reporter_address(given, CONTACTS) == expected


def test_an_unknown_reporter_is_refused_naming_the_field():
    with pytest.raises(flow.EmergencyParamError, match="param 'reporter'"):
        flow.reporter_address("nobody", CONTACTS)
    assert flow.reporter_address("nobody", CONTACTS, "nobody@desk.cn") == "nobody@desk.cn"


def test_an_emergency_change_is_needed_when_the_business_stops_or_a_component_changes():
    assert not flow.Solution("restart").needs_change_request
    assert flow.Solution("x", interrupts_business=True).needs_change_request
    assert flow.Solution("x", changes_it_component=True).needs_change_request


def test_the_change_request_refers_to_the_incident_and_carries_the_approvals():
    rs, _, _ = rounds()
    second = rs[2]
    assert second.solution is not None
    draft = records.change_request_draft(brief(), 2, second.solution, second.approvals)
    assert draft.queue == "Change Requests" and draft.refers_to == ("4711",)
    assert "pay-gw-cluster" in draft.description and "郑刚" in draft.description
    assert draft.idempotency_key == flow.key(brief(), "change", 2)


def test_the_problem_goes_to_the_problem_manager_with_the_handling_details():
    rs, _, _ = rounds()
    draft = records.problem_draft(brief(), rs, flow.lifted_answer(rs))
    assert (draft.queue, draft.owner, draft.refers_to) == ("Problems", "zhou.qiang", ("4711",))
    assert "round 1" in draft.description and "rejected" in draft.description
    assert "99.6%" in draft.description


def test_rounds_travel_through_xcom_unchanged():
    rs, _, _ = rounds()
    assert [flow.Round.from_dict(json.loads(json.dumps(r.to_dict()))) for r in rs] == rs


def test_the_suggested_route_follows_the_coverage_but_never_for_a_continuation():
    yes, no = Coverage(True, (), "met"), Coverage(False, (), "not met")
    assert flow.suggested_route(yes, continuation=False) == flow.COVERED_PLAN
    assert flow.suggested_route(yes, continuation=True) == flow.COVERED_VENDORS
    assert flow.suggested_route(no, continuation=False) == flow.COVERED_VENDORS


def test_an_answer_without_a_time_sorts_last_in_the_timeline():
    late = flow.Answer("101.5", "q", ("x",), "a", None)
    early = flow.Answer("101.2", "q", ("y",), "b", at(1))
    events = records.timeline(START, "ops", [late, early], [])
    assert [e.who for e in events] == ["ops", "b", "a"]


@pytest.mark.parametrize(("typed", "expected"), [
    ("2026-11-26 10:40", datetime(2026, 11, 26, 2, 40, tzinfo=UTC)),  # Shanghai, UTC+8
    ("2026-11-26T10:40", datetime(2026, 11, 26, 2, 40, tzinfo=UTC)),
    ("2026-11-26 10:40+00:00", datetime(2026, 11, 26, 10, 40, tzinfo=UTC)),
    ("", None), ("  ", None), ("昨天晚上", None), ("26/11/2026 10:40", None),
])
def test_the_recovery_time_typed_when_lifting_is_read_in_the_deployment_zone(typed, expected):
    assert flow.recovery_time(typed, "Asia/Shanghai") == expected
