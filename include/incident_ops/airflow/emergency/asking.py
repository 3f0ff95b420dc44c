"""The emergency's questions to people (HITL): subject, body, preselected answer, assignees.

Each function is the ``prepare`` of an operator in ``emergency.operators``, called just
before the question is asked, with the task's context. Bodies are Markdown (the Airflow UI
renders them) and bilingual, and carry what the person needs to decide without leaving the
page: the plan's conditions and steps, the symptoms, the rounds so far, the proposed
solution, whose question it is and what an answer must hold. Each also says what it asks
(``kind``, ``step``, ``title``): who answers it and how it is chased follow from that
(``policy.questions``).
"""

from __future__ import annotations

from typing import Any

from incident_ops.airflow.emergency.ids import round_task
from incident_ops.airflow.emergency.steps import (
    answer_of,
    brief_of,
    collect_rounds,
    history_markdown,
)
from incident_ops.policy import emergency as flow
from incident_ops.policy import questions as qs


def _head(brief: flow.Brief) -> str:
    inc = brief.incident
    drill = ("\n> **演练 / DRY RUN** — 不会发送或创建任何内容 / nothing is sent or created\n"
             if brief.dry_run else "")
    return (f"### 事件 / Incident #{inc.id} {inc.subject}\n{drill}\n"
            f"- 系统 / System: **{brief.system_label}**\n"
            f"- 影响度 / Impact: **{brief.impact_label}**\n"
            f"- 症状 / Symptoms: {brief.symptoms}\n"
            f"- 报告人 / Reporter: {brief.reporter}\n"
            f"- 应急启动 / Started: {flow.local_time(brief.started_at, brief.tz)}\n")


def _warnings(brief: flow.Brief) -> str:
    return "".join(f"\n> ⚠️ {w}\n" for w in brief.warnings)


def _spec(brief: flow.Brief, kind: str, step: str, title: str, body: str,
          **extra: Any) -> dict[str, Any]:
    """What every question returns: its subject and body, whose it is, what it asks."""
    drill = "[演练 DRY RUN] " if brief.dry_run else ""
    return {"subject": f"{drill}[#{brief.incident_id}] {step} {title}",
            "body": f"{body}\n\n{qs.who_answers_md(brief, kind)}",
            "assigned_users": qs.hitl_users(qs.assignees(brief, kind)),
            "kind": kind, "step": step, "title": title, **extra}


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
    suggested = flow.suggested_route(brief.coverage, bool(brief.round_offset))
    body = (f"{_head(brief)}{_warnings(brief)}\n**{plan.title.both()}** (v{plan.version}, "
            f"`{plan.file}`)\n\n启动条件 / Start conditions:\n" + "\n".join(lines) +
            f"\n\n**建议 / Suggested**: {suggested} — {brief.coverage.reason}\n\n"
            "应急小组与厂商根据现象和影响判断 (101.2)。/ The team and the vendors judge from "
            "the symptoms and the impact (101.2).")
    return _spec(brief, qs.COVERED, "101.2", flow.Q_COVERED, body, defaults=suggested)


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
            "全部执行后请确认。选“部分步骤未能执行”时，须在备注中写明哪些步骤及原因。/ Confirm "
            "once carried out. *Some steps could not be carried out* needs the notes: which "
            "steps, and why.")
    return _spec(brief, qs.STEPS, "101.3", flow.Q_STEPS, body)


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
    opened = flow.local_time(brief.incident.created, brief.tz)
    body = (f"{_head(brief)}\n{done}\n\n历史 / Rounds so far:\n{history_markdown(rounds)}\n\n"
            "应急小组、厂商与相关部门确认 (101.5)。/ Team, vendors and departments confirm "
            "(101.5).\n\n"
            f"- **已解除 / Lifted**: 须填写业务恢复时间（YYYY-MM-DD HH:MM，{brief.tz} 时间，"
            f"不晚于现在、不早于事件单创建 {opened}）与恢复情况 / give the business recovery "
            f"time (YYYY-MM-DD HH:MM, {brief.tz} time, not in the future, not before the "
            f"incident was opened at {opened}) and how it recovered.\n"
            "- **未解除 / Not lifted**: 无需填写，进入下一轮厂商处理 (101.4) / nothing to fill "
            "in; another vendor round starts (101.4).\n\n"
            "不符合以上要求的回答会退回并说明原因。/ An answer that does not meet this is sent "
            "back, saying why.")
    title = flow.Q_LIFTED if round is None else \
        f"{flow.Q_LIFTED} — 第 {brief.round_offset + round} 轮 / round " \
        f"{brief.round_offset + round}"
    return _spec(brief, qs.LIFTED_Q, "101.5", title, body)


def solution_entry(context: Any, round: int) -> dict[str, Any]:
    """101.4: what the team and the vendors propose in this round."""
    brief = brief_of(context)
    plan = brief.plan
    rounds, _ = collect_rounds(context, brief)
    n = brief.round_offset + round
    vendors = ", ".join(f"{v.name} ({v.phone or v.email})" for v in plan.vendors) or "—"
    body = (f"{_head(brief)}\n厂商 / Vendors: {vendors}\n\n历史 / Rounds so far:\n"
            f"{history_markdown(rounds)}\n\n"
            "填写方案（必填）。中断业务或变更 IT 组件的方案须走紧急变更（自动建单），变更组件时"
            "须写明组件；需要集团中心支持时勾选并写明请求内容。其余字段选填。/ Describe the "
            "solution (required). One that interrupts the business or changes an IT component "
            "gets an emergency change request (raised automatically): name the component when "
            "one changes. Tick group support and say what is asked if the group centre must "
            "step in. Everything else is optional.")
    return _spec(brief, qs.SOLUTION, "101.4",
                 f"{flow.Q_SOLUTION} — 第 {n} 轮 / round {n}", body)


def approval_question(context: Any, round: int, role: str) -> dict[str, Any]:
    """101.4: the solution is approved by the team lead and by a leader before it is done."""
    brief = brief_of(context)
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
        kind, title = qs.APPROVE_LEAD, flow.Q_APPROVE_LEAD
    else:
        kind, title = qs.APPROVE_LEADER, flow.Q_APPROVE_LEADER
    return _spec(brief, kind, "101.4", f"{title} — 第 {n} 轮 / round {n}", body)
