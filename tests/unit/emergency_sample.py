"""A worked emergency as plain data: the brief, rounds and answers of a major billing outage.

Used by the report-rendering tests and by ``scripts/render_major_incident_png.py``, which
draws ``docs/major-incident-report.png`` from it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from incident_ops.config import load_contacts, load_plans
from incident_ops.model import Ticket
from incident_ops.policy import emergency as flow
from incident_ops.policy.contingency import assess_coverage
from incident_ops.policy.emergency_records import Event

START = datetime(2026, 11, 26, 1, 5, tzinfo=UTC)  # 09:05 in Shanghai


def at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


def brief(impact: str = "major", symptoms: str = "全省缴费失败率 30%，充值失败，营业厅无法收费"
          ) -> flow.Brief:
    contacts = load_contacts()
    plan = load_plans(contacts).get("billing")
    ticket = Ticket(id="4711", subject="全省缴费失败率突增 / province-wide payment failures",
                    status="assigned-l2", priority="urgent", created=at(-20), updated=at(-5),
                    system="billing", impact=impact, handler="chen.jing")
    params = {"ticket_id": "4711", "system": "billing", "impact": impact,
              "symptoms": symptoms, "reporter": "wang.fang"}
    return flow.make_brief(ticket, params, plan, assess_coverage(plan, symptoms, impact),
                           contacts, reporter_email="wang.fang@ops.example.cn",
                           emergency_id="manual__2026-11-26T01:05:00+00:00",
                           run_id="manual__2026-11-26T01:05:00+00:00", now=START,
                           started_by="sun.min")


def answer(step: str, question: str, chosen: str, by: str, minutes: int,
           **params: Any) -> flow.Answer:
    return flow.Answer(step, question, (chosen,), by, at(minutes), dict(params))


def rounds() -> tuple[list[flow.Round], list[flow.Answer], list[Event]]:
    """Plan first (not lifted), a rejected round, then a lifted one with an emergency change."""
    covered = answer("101.2", flow.Q_COVERED, flow.COVERED_PLAN, "陈静", 6)
    steps = answer("101.3", flow.Q_STEPS, flow.STEPS_PARTLY, "陈静", 31,
                   notes="备用缴费通道切换失败 / standby channel switch failed")
    plan_lifted = answer("101.5", flow.Q_LIFTED, flow.NOT_LIFTED, "孙敏", 34)
    s1 = {"solution": "重启缴费网关集群全部节点", "vendor": "天衡计费软件支持中心"}
    p1 = answer("101.4", f"{flow.Q_SOLUTION} (1)", flow.SUBMIT, "天衡计费 刘工", 52, **s1)
    a1 = answer("101.4", f"{flow.Q_APPROVE_LEAD} (1)", flow.APPROVE, "陈静", 55)
    r1 = answer("101.4", f"{flow.Q_APPROVE_LEADER} (1)", flow.REJECT, "郑刚", 58)
    s2 = {"solution": "回退昨晚上线的缴费网关版本 v5.2.1 至 v5.1.8，并对充值接口限流 2000 TPS",
          "vendor": "天衡计费软件支持中心", "interrupts_business": True,
          "changes_it_component": True, "component": "pay-gw-cluster"}
    p2 = answer("101.4", f"{flow.Q_SOLUTION} (2)", flow.SUBMIT, "天衡计费 刘工", 71, **s2)
    a2 = answer("101.4", f"{flow.Q_APPROVE_LEAD} (2)", flow.APPROVE, "陈静", 74)
    l2 = answer("101.4", f"{flow.Q_APPROVE_LEADER} (2)", flow.APPROVE, "郑刚", 76)
    lifted = answer("101.5", f"{flow.Q_LIFTED} (2)", flow.LIFTED, "孙敏", 118,
                    recovered_at="2026-11-26 10:58",
                    recovery_note="缴费成功率恢复至 99.6%，积压充值已补处理 / "
                                  "payments back to 99.6%")
    rounds = [
        flow.Round(0, flow.ROUTE_PLAN, None, None, (), steps, None, False, plan_lifted),
        flow.Round(1, flow.ROUTE_VENDORS, flow.Solution.from_params(s1), p1, (a1, r1), None,
                   None, False, None),
        flow.Round(2, flow.ROUTE_VENDORS, flow.Solution.from_params(s2), p2, (a2, l2), None,
                   "4712", False, lifted),
    ]
    decisions = [covered, steps, plan_lifted, p1, a1, r1, p2, a2, l2, lifted]
    notes = [Event(at(2), "101.1", "automation", "首报已发送 / initial report sent to 9 "
                                                       "addresses, SMS to 6 team members"),
             Event(at(77), "101.4", "automation", "紧急变更 / emergency change #4712 raised")]
    return rounds, decisions, notes
