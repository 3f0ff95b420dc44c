"""What 101 writes down: the change request, the Major Incident Report and problem tickets,
and the timeline of who decided what and when (pure, from the brief and the rounds)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from incident_ops.model import TicketDraft
from incident_ops.policy.emergency_brief import (
    ROUTE_PLAN,
    Answer,
    Brief,
    Round,
    Solution,
    key,
    local_time,
    recovery_time,
)
from incident_ops.text import one_line

CHANGE_QUEUE = "Change Requests"
PROBLEM_QUEUE = "Problems"
MAJOR_REPORT_QUEUE = "Major Incident Reports"


# ---------------------------------------------------------------------- timeline
@dataclass(frozen=True)
class Event:
    at: datetime | None
    step: str
    who: str
    what: str


# How the form fields of the answers read in the timeline.
FIELD_LABELS = {"solution": "方案", "vendor": "厂商", "interrupts_business": "中断业务",
                "changes_it_component": "变更IT组件", "component": "组件",
                "group_support_needed": "需集团支持", "group_request": "集团请求",
                "notes": "备注", "recovered_at": "业务恢复", "recovery_note": "恢复情况"}


def _detail(params: Mapping[str, Any]) -> str:
    parts = []
    for name, value in params.items():
        if value in ("", None, False):
            continue
        label = FIELD_LABELS.get(name, name)
        parts.append(label if value is True else f"{label}: {value}")
    return "; ".join(parts)


def timeline(started_at: datetime, started_by: str, decisions: Sequence[Answer],
             notes: Sequence[Event]) -> list[Event]:
    """Who decided what and when, in time order (events without a time go last)."""
    events = [Event(started_at, "101", started_by, "应急流程启动 / emergency started")]
    for a in decisions:
        what = f"{a.question}: {', '.join(a.chosen) or '—'}"
        detail = _detail(a.params)
        events.append(Event(a.at, a.step, a.by, f"{what} ({detail})" if detail else what))
    events += notes
    far = datetime.max.replace(tzinfo=started_at.tzinfo)
    return sorted(events, key=lambda e: e.at or far)


# ----------------------------------------------------------------- 101.4 / 101.6 tickets
def _t(at: datetime | None, tz: str) -> str:
    return local_time(at, tz)


def recovered_text(brief: Brief, lifted: Answer | None) -> str:
    """The business recovery time given when lifting, in the deployment's zone, labelled
    (as typed when it is not a time: the report shows what the person said)."""
    typed = str((lifted.params if lifted else {}).get("recovered_at") or "").strip()
    moment = recovery_time(typed, brief.tz) if typed else None
    return local_time(moment, brief.tz) if moment else (typed or "—")


def _short(text: str, n: int = 60) -> str:
    return one_line(text, n)


def change_request_draft(brief: Brief, round_no: int, solution: Solution,
                         approvals: Sequence[Answer]) -> TicketDraft:
    inc = brief.incident
    why = [w for w, on in (("中断业务 / interrupts the business", solution.interrupts_business),
                           (f"变更 IT 组件 / changes an IT component: {solution.component or '—'}",
                            solution.changes_it_component)) if on]
    approved = "\n".join(f"  - {a.question}: {a.first} by {a.by} at {_t(a.at, brief.tz)}"
                         for a in approvals)
    description = (
        f"紧急变更 (101.4) for incident #{inc.id} {inc.subject}\n"
        f"Emergency {brief.emergency_id}, round {round_no}\n\n"
        f"方案 / Solution:\n{solution.text}\n\n"
        f"厂商 / Vendor: {solution.vendor or '—'}\n"
        f"原因 / Why an emergency change: {'; '.join(why)}\n"
        f"审批 / Approved:\n{approved}\n")
    return TicketDraft(
        queue=CHANGE_QUEUE,
        subject=f"紧急变更 / Emergency change: #{inc.id} round {round_no}: "
                f"{_short(solution.text)}",
        description=description, idempotency_key=key(brief, "change", round_no),
        priority="urgent", requester=brief.to.reporter,
        fields={"system": brief.system, "impact": brief.impact}, refers_to=(inc.id,))


def handling_summary(rounds: Sequence[Round]) -> str:
    """Plain text of how the emergency was handled (ticket descriptions, 101.6)."""
    lines = []
    for r in rounds:
        if r.route == ROUTE_PLAN:
            lines.append(f"- 预案处置 / plan route: {r.carried_out.first if r.carried_out else '—'}"
                         f" → {r.outcome}")
        else:
            sol = r.solution.text if r.solution else "—"
            change = f", change #{r.change_request}" if r.change_request else ""
            lines.append(f"- 第 {r.number} 轮 / round {r.number}: {_short(sol, 200)}{change}"
                         f" → {r.outcome}")
    return "\n".join(lines) or "—"


def final_solution(brief: Brief, rounds: Sequence[Round]) -> str:
    for r in reversed(rounds):
        if r.outcome == "lifted":
            if r.route == ROUTE_PLAN:
                return "按预案处置 / Followed the contingency plan:\n" + "\n".join(
                    f"{i}. {s.text.both()}" for i, s in enumerate(brief.plan.steps, 1))
            return r.solution.text if r.solution else "—"
    return "—"


def major_report_draft(brief: Brief, rounds: Sequence[Round], lifted: Answer | None
                       ) -> TicketDraft:
    inc = brief.incident
    return TicketDraft(
        queue=MAJOR_REPORT_QUEUE,
        subject=f"重大事件报告 / Major incident report: #{inc.id} {_short(inc.subject)}",
        description=(f"《重大事件报告》 (101.6) — incident #{inc.id} {inc.subject}\n"
                     f"系统 / System: {brief.system_label}\n"
                     f"影响度 / Impact: {brief.impact_label}\n"
                     f"解除时间 / Lifted: {_t(lifted.at if lifted else None, brief.tz)}\n"
                     f"业务恢复 / Business recovery: {recovered_text(brief, lifted)}\n\n"
                     f"处置经过 / Handling:\n{handling_summary(rounds)}\n\n"
                     "完整报告见附件（PDF 为正式文本）/ The full report is attached (the PDF is "
                     "the formal document)."),
        idempotency_key=key(brief, "major-report"), priority="urgent",
        requester=brief.to.reporter, fields={"system": brief.system, "impact": brief.impact},
        refers_to=(inc.id,))


def problem_draft(brief: Brief, rounds: Sequence[Round], lifted: Answer | None
                  ) -> TicketDraft:
    """101.6: a problem ticket with the handling details, for the problem manager's RCA."""
    inc = brief.incident
    recovery = lifted.params if lifted else {}
    return TicketDraft(
        queue=PROBLEM_QUEUE,
        subject=f"问题 / Problem: emergency on #{inc.id} {_short(inc.subject)}",
        description=(f"请组织根本原因分析 / Please organise the root-cause analysis (101.6).\n\n"
                     f"事件 / Incident: #{inc.id} {inc.subject}\n"
                     f"系统 / System: {brief.system_label}; 影响度 / Impact: "
                     f"{brief.impact_label}\n"
                     f"症状 / Symptoms: {brief.symptoms}\n\n"
                     f"处置经过 / Handling:\n{handling_summary(rounds)}\n\n"
                     f"最终方案 / Final solution:\n{final_solution(brief, rounds)}\n\n"
                     f"解除 / Lifted: {_t(lifted.at if lifted else None, brief.tz)} by "
                     f"{lifted.by if lifted else '—'}\n"
                     f"业务恢复 / Business recovery: {recovered_text(brief, lifted)} "
                     f"{recovery.get('recovery_note') or ''}\n"
                     f"应急编号 / Emergency: {brief.emergency_id}"),
        idempotency_key=key(brief, "problem"), priority="high",
        owner=brief.problem_manager, requester=brief.to.reporter,
        fields={"system": brief.system, "impact": brief.impact}, refers_to=(inc.id,))
