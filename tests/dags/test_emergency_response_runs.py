"""emergency_response under dag.test(), continued: an emergency that outlasts its rounds,
bad params, a dry run. A file of its own so that ``--dist loadfile`` spreads the emergency
scenarios over the workers; the harness is ``test_emergency_response``'s."""

from __future__ import annotations

import pytest

from tests.dags import test_emergency_response as er
from tests.dags.test_emergency_response import (
    HQ,
    approve,
    conf,
    flow,
    incident,
    lifted,
    referring,
    run,
    solution,
    subjects,
    succeeded,
)
from tests.support import artefacts

pytestmark = [pytest.mark.integration, pytest.mark.dags]

env = er.env  # the same fixture


def test_an_emergency_that_outlasts_the_rounds_continues_in_a_new_run(env):
    tid = incident(env, "短信验证码延迟", system="sms-gw")
    first = {"covered": {"chosen": [flow.COVERED_VENDORS]},
             "round_1.propose_solution": solution("重启短信网关进程"), **approve(1),
             **lifted("round_1.lifted", False)}
    then = {"round_1.propose_solution": solution("切换到备用 SMSC 链路",
                                                 changes_it_component=True,
                                                 component="smsc-link-2"),
            **approve(1), **lifted("round_1.lifted", True)}
    [result] = run(env, {"conf": conf(tid, "客户反映收不到短信验证码", system="sms-gw"),
                         "answers": first, "continue": {"answers": then}}, rounds=1)
    succeeded(result)
    assert result["states"]["escalate"] == "success"
    assert result["states"]["continue_in_new_run"] == "success" and result["triggered"]
    assert result["states"]["aftermath.report"] == "skipped"
    nxt = result["continued"]
    succeeded(nxt)
    assert "covered" not in nxt["asked"]  # a continuation goes straight back to 101.4
    assert "重启短信网关进程" in nxt["asked"]["round_1.propose_solution"]["body"]
    assert "第 2 轮" in nxt["asked"]["round_1.propose_solution"]["subject"]
    report = artefacts.read_json(nxt["xcom"]["aftermath.report"]["paths"]["json"])
    assert [r["label"] for r in report["rounds"]] == ["第 1 轮 / round 1", "第 2 轮 / round 2"]
    hq = subjects(env, HQ)
    assert hq["【应急启动】#" + tid] == 1  # the continuation is the same emergency
    assert hq["【应急升级】#" + tid] == 1
    change = referring(env, tid)["Change Requests"]
    assert len(change) == 1 and "round 2" in env["desk"].get(change[0]).subject



def test_bad_params_are_refused_before_anything_is_sent(env):
    open_id = incident(env, "参数校验")
    closed_id = incident(env, "已关闭的事件", status="closed")
    good = conf(open_id, "CRM 无法登录")
    results = run(env,
                  {"conf": {**good, "impact": "catastrophic"}},
                  {"conf": {**good, "ticket_id": "ABC"}},
                  {"conf": {k: v for k, v in good.items() if k != "symptoms"}},
                  {"conf": {**good, "ticket_id": "99999999"}},
                  {"conf": {**good, "ticket_id": closed_id}},
                  {"conf": {**good, "reporter": "nobody-we-know"}})
    # Schema violations never make a run; the message names the field.
    for result, field in zip(results[:3], ("impact", "ticket_id", "symptoms"), strict=True):
        assert result.get("error") == "ParamValidationError", result
        assert field in result["message"]
    # Desk checks fail the run in its first task, at once (no retries), naming the field.
    for result in results[3:]:
        assert result["state"] == "failed", result
        assert result["states"]["validate"] == "failed"
        assert result["states"]["notify_start"] == "upstream_failed"
    log = env["log"]
    assert "Invalid param 'ticket_id': no ticket 99999999" in log
    assert f"Invalid param 'ticket_id': incident {closed_id} is closed" in log
    assert "Invalid param 'reporter'" in log
    assert len(env["mail"]) == 0 and not env["sms"].delivered
    for tid in (open_id, closed_id):
        assert not env["desk"].get(tid).automation_keys



def test_a_dry_run_walks_the_process_and_sends_or_creates_nothing(env):
    tid = incident(env, "演练：缴费网关", system="billing", impact="major")
    before = env["desk"].get(tid)
    answers = {"covered": {"chosen": [flow.COVERED_VENDORS]},
               "round_1.propose_solution": solution("切换备用通道", interrupts_business=True,
                                                    group_support_needed=True,
                                                    group_request="请集团支持"),
               **approve(1), **lifted("round_1.lifted", True)}
    [result] = run(env, {"conf": {**conf(tid, "全省缴费失败", system="billing", impact="major"),
                                  "dry_run": True}, "answers": answers})
    succeeded(result)
    # Nothing left the building and nothing changed in the desk.
    assert len(env["mail"]) == 0 and not env["sms"].delivered
    after = env["desk"].get(tid)
    assert (after.version, after.automation_keys, after.recovered_at) == (
        before.version, before.automation_keys, before.recovered_at)
    assert referring(env, tid) == {}
    assert result["xcom"]["round_1.carry_out"]["change_request"] is None
    assert result["xcom"]["aftermath.major_incident_report"] is None
    # The people were asked, told it is a rehearsal.
    assert all(q["subject"].startswith("[演练 DRY RUN]") for q in result["asked"].values())
    # Each step's plan page shows what it would have sent and created.
    pages = [k for k in artefacts.store().keys("emergency_response") if k.endswith(".json")]
    plans = {d["step"]: d for d in map(artefacts.read_json, pages) if "step" in d}
    assert {"notify_start", "round_1.carry_out", "announce_lifted", "report",
            "major_incident_report", "problem_ticket"} <= set(plans)
    for plan in plans.values():
        assert plan["dry_run"] is True
        assert {o["outcome"] for o in plan["outcomes"]} <= {"planned"}
    carried = {a["rule"] for a in plans["round_1.carry_out"]["actions"]}
    assert carried == {"emergency.hq-approved", "emergency.change-request",
                       "emergency.group-support"}
    assert [a["kind"] for a in plans["major_incident_report"]["actions"]] == ["create"]
    report = artefacts.read_json(result["xcom"]["aftermath.report"]["paths"]["json"])
    assert report["title_zh"] == "重大事件报告"  # the report itself is still written

