"""emergency_response under dag.test(), continued: a major emergency's aftermath, and
aftermath tasks retried. A file of its own so that ``--dist loadfile`` spreads the
emergency scenarios over the workers; the harness is ``test_emergency_response``'s."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.dags import test_emergency_response as er
from tests.dags.test_emergency_response import (
    HQ,
    LEAD_USER,
    approve,
    attachments,
    conf,
    flow,
    incident,
    lifted,
    referring,
    run,
    solution,
    subjects,
    succeeded,
    texts,
)
from tests.support import artefacts

pytestmark = [pytest.mark.integration, pytest.mark.dags]

env = er.env  # the same fixture


def test_major_emergency_files_the_major_incident_report_and_the_problem(env):
    tid = incident(env, "缴费失败率升高", system="billing", impact="major")
    answers = {"covered": {"chosen": [flow.COVERED_VENDORS], "by": LEAD_USER},  # overrides
               "round_1.propose_solution": solution("重启缴费网关集群"),
               **approve(1, leader=flow.REJECT),
               "round_2.propose_solution": solution("切换至备用缴费通道并限流",
                                                    interrupts_business=True),
               **approve(2), **lifted("round_2.lifted", True)}
    [result] = run(env, {"conf": conf(tid, "全省缴费失败率 30%，充值失败", system="billing",
                                      impact="major", reporter="wang.fang@ops.example.cn"),
                         "answers": answers})
    succeeded(result)
    assert f"**建议 / Suggested**: {flow.COVERED_PLAN}" in result["asked"]["covered"]["body"]
    states = result["states"]
    assert states["round_1.carry_out"] == "skipped" and states["round_1.lifted"] == "skipped"
    assert states["round_1.approval_outcome"] == "success"  # the rejection led to round 2
    linked = referring(env, tid)
    mir_id = str(result["xcom"]["aftermath.major_incident_report"])
    problem_id = str(result["xcom"]["aftermath.problem_ticket"])
    assert linked["Major Incident Reports"] == [mir_id]
    assert linked["Problems"] == [problem_id]
    assert len(linked["Change Requests"]) == 1  # round 2 only: round 1 was rejected
    assert sorted(n.rsplit(".", 1)[1] for n in attachments(env, mir_id)) == ["html", "pdf"]
    mir = env["desk"].get(mir_id)
    assert mir.subject.startswith("重大事件报告") and mir.impact == "major"
    problem = env["desk"].get(problem_id)
    assert problem.handler == "zhou.qiang" and problem.queue == "Problems"
    mail = env["mail"].one(to="wang.fang@ops.example.cn", subject_contains="【应急总结】")
    assert "《重大事件报告》" in str(mail["Subject"])
    key = result["xcom"]["aftermath.report"]["paths"]["print"]  # a key of the artefact store
    page = artefacts.read_text(key)
    assert "重大事件报告" in page and "方案驳回 / rejected" in page and "@page" in page



def test_retried_aftermath_tasks_create_and_send_nothing_twice(env):
    tid = incident(env, "CRM 数据库宕机", impact="major")
    retried = ["aftermath.report", "aftermath.major_incident_report", "aftermath.problem_ticket",
               "aftermath.announce_lifted", "notify_start"]
    [result] = run(env, {"conf": conf(tid, "CRM 数据库宕机，主备切换失败", impact="major"),
                         "answers": {"covered": {"chosen": [flow.COVERED_PLAN]},
                                     "plan.follow_plan": {"chosen": [flow.STEPS_PARTLY],
                                                          "params": {"notes": "第3步失败"}},
                                     **lifted("plan.lifted", True)},
                         "fail_once_after": retried})
    succeeded(result)
    assert "injected failure" in env["log"]  # each of them really failed once
    linked = referring(env, tid)
    assert {q: len(ids) for q, ids in linked.items()} == {"Major Incident Reports": 1,
                                                           "Problems": 1}
    assert len(attachments(env, linked["Major Incident Reports"][0])) == 2
    hq = subjects(env, HQ)
    assert hq == Counter({"【应急启动】#" + tid: 1, "【应急通报】#" + tid: 2,
                          "【应急总结】《重大事件报告》#" + tid: 1})
    assert len(env["mail"].find(to="li.na@ops.example.cn")) == 1
    assert len(texts(env, "【应急启动】")) == 1

