"""The emergency's questions to people (HITL): subject, body, preselected answer, assignees.

Each function is the ``prepare`` of an operator in ``emergency_operators``, called just
before the question is asked, with the task's context. Bodies are Markdown (the Airflow UI renders
them) and bilingual, and carry what the person needs to decide without leaving the page:
the plan's conditions and steps, the symptoms, the rounds so far, the proposed solution.
"""

from __future__ import annotations

from typing import Any

from incident_ops.airflow.emergency_ids import round_task
from incident_ops.airflow.emergency_tasks import (
    answer_of,
    brief_of,
    collect_rounds,
    history_markdown,
)
from incident_ops.policy import emergency as flow


def _head(brief: flow.Brief) -> str:
    inc = brief.incident
    drill = ("\n> **演练 / DRY RUN** — 不会发送或创建任何内容 / nothing is sent or created\n"
             if brief.dry_run else "")
    return (f"### 事件 / Incident #{inc.id} {inc.subject}\n{drill}\n"
            f"- 系统 / System: **{brief.system_label}**\n"
            f"- 影响度 / Impact: **{brief.impact_label}**\n"
            f"- 症状 / Symptoms: {brief.symptoms}\n"
            f"- 报告人 / Reporter: {brief.reporter}\n")


def _subject(brief: flow.Brief, text: str) -> str:
    drill = "[演练 DRY RUN] " if brief.dry_run else ""
    return f"{drill}[#{brief.incident_id}] {text}"


def _users(people: Any) -> list[dict[str, str]] | None:
    """HITL assignees from the plan's ``airflow_user`` fields; None lets anyone answer."""
    users = [{"id": p.airflow_user, "name": p.name} for p in people if p.airflow_user]
    return users or None


def covered_question(context: Any) -> dict[str, Any]:
    """101.2, preselected from the plan's start conditions against the symptoms."""
    brief = brief_of(context)
    plan = brief.plan
    matched = {m["id"]: m for m in brief.coverage.matched}
    lines = []
    for c in plan.start_conditions:
        if c.id in matched:
            lines.append(f"- ✅ **{c.id}**: {c.text.both()} — 命中 / found: "
                         f"{', '.join(matched[c.id]['keywords'])}")
        else:
            lines.append(f"- ▫️ {c.id}: {c.text.both()}")
    body = (f"{_head(brief)}\n**{plan.title.both()}** (v{plan.version}, `{plan.file}`)\n\n"
            "启动条件 / Start conditions:\n" + "\n".join(lines) +
            f"\n\n**建议 / Suggested**: {brief.coverage.reason}\n\n"
            "应急小组与厂商根据现象和影响判断 (101.2)。/ The team and the vendors judge from "
            "the symptoms and the impact (101.2).")
    return {"subject": _subject(brief, f"101.2 {flow.Q_COVERED}"), "body": body,
            "defaults": flow.suggested_route(brief.coverage, bool(brief.round_offset))}


def plan_steps_question(context: Any) -> dict[str, Any]:
    """101.3: the plan's steps; the team confirms them carried out."""
    brief = brief_of(context)
    plan = brief.plan
    steps = []
    for i, s in enumerate(plan.steps, 1):
        when = f" (≤ {s.minutes} min)" if s.minutes is not None else ""
        who = f" — *{s.owner}*" if s.owner else ""
        steps.append(f"{i}. {s.text.zh}<br>{s.text.en}{who}{when}")
    team = ", ".join(f"{p.name} ({p.phone or p.email})" for p in plan.team)
    body = (f"{_head(brief)}\n**{plan.title.both()}** — 处置步骤 / handling steps:\n\n"
            + "\n".join(steps) + f"\n\n应急小组 / Team: {team}\n\n"
            "全部执行后请确认；未能执行的步骤写在备注中。/ Confirm once carried out; note any "
            "step that could not be.")
    return {"subject": _subject(brief, f"101.3 {flow.Q_STEPS}"), "body": body,
            "assigned_users": _users([plan.leader])}


def lifted_question(context: Any, round: int | None = None) -> dict[str, Any]:
    """101.5: the team, vendors and departments concerned confirm it is lifted."""
    brief = brief_of(context)
    rounds, _ = collect_rounds(context, brief)
    if round is None:
        done = "按预案处置已执行 / the plan's steps were carried out"
    else:
        proposed = answer_of(context, round_task(round, "propose_solution"), "101.4",
                             flow.Q_SOLUTION)
        solution = flow.Solution.from_params(proposed.params) if proposed else None
        carried = context["ti"].xcom_pull(task_ids=round_task(round, "carry_out")) or {}
        change = (f"\n\n紧急变更 / Emergency change: #{carried['change_request']}"
                  if carried.get("change_request") else "")
        done = f"已实施方案 / Solution carried out: {solution.text if solution else '—'}{change}"
    body = (f"{_head(brief)}\n{done}\n\n历史 / Rounds so far:\n{history_markdown(rounds)}\n\n"
            "应急小组、厂商与相关部门确认。解除时请填写业务恢复时间与恢复情况；未解除将进入下一轮"
            "厂商处理 (101.4)。/ Team, vendors and departments confirm. When lifted, give the "
            "business recovery time and how it recovered; *not lifted* starts another vendor "
            "round (101.4).")
    return {"subject": _subject(brief, f"101.5 {flow.Q_LIFTED}"), "body": body}


def solution_entry(context: Any, round: int) -> dict[str, Any]:
    """101.4: what the team and the vendors propose in this round."""
    brief = brief_of(context)
    plan = brief.plan
    rounds, _ = collect_rounds(context, brief)
    n = brief.round_offset + round
    vendors = ", ".join(f"{v.name} ({v.phone or v.email})" for v in plan.vendors) or "—"
    body = (f"{_head(brief)}\n厂商 / Vendors: {vendors}\n\n历史 / Rounds so far:\n"
            f"{history_markdown(rounds)}\n\n"
            "填写方案。中断业务或变更 IT 组件的方案须走紧急变更（自动建单）；需要集团中心支持请勾选"
            "并说明。/ Describe the solution. A solution that interrupts the business or changes "
            "an IT component gets an emergency change request (raised automatically); tick "
            "group support and say what is needed if the group centre must step in.")
    return {"subject": _subject(brief, f"101.4 {flow.Q_SOLUTION} — 第 {n} 轮 / round {n}"),
            "body": body}


def approval_question(context: Any, round: int, role: str) -> dict[str, Any]:
    """101.4: the solution is approved by the team lead and by a leader before it is done."""
    brief = brief_of(context)
    plan = brief.plan
    n = brief.round_offset + round
    proposed = answer_of(context, round_task(round, "propose_solution"), "101.4", flow.Q_SOLUTION)
    s = flow.Solution.from_params(proposed.params if proposed else {})
    flags = [f for f, on in (("⚠️ 中断业务 / interrupts the business", s.interrupts_business),
                             (f"⚠️ 变更 IT 组件 / changes an IT component: {s.component or '—'}",
                              s.changes_it_component),
                             (f"集团支持 / group support: {s.group_request or '—'}",
                              s.group_support_needed)) if on]
    body = (f"{_head(brief)}\n**方案 / Solution** (第 {n} 轮 / round {n}, "
            f"{proposed.by if proposed else '—'}):\n\n"
            f"{s.text or '⚠️ 未填写方案，请驳回 / no solution given: reject it'}\n\n"
            f"厂商 / Vendor: {s.vendor or '—'}\n\n" + "\n".join(f"- {f}" for f in flags) +
            ("\n\n批准后将创建紧急变更单。/ An emergency change request is raised on approval."
             if s.needs_change_request else "") +
            "\n\n驳回将开始新一轮方案。/ *Reject* starts a new round.")
    if role == "team_lead":
        title, users = flow.Q_APPROVE_LEAD, _users([plan.leader])
    else:
        title, users = flow.Q_APPROVE_LEADER, None
    return {"subject": _subject(brief, f"101.4 {title} — 第 {n} 轮 / round {n}"), "body": body,
            "assigned_users": users}
