"""The 101.6 aftermath report: how the emergency was handled, as HTML for screen and paper.

Built from the run's brief, the rounds and the human decisions (who, what, when, from the
HITL answers), it says what 101.6 asks the team to brief: how it was handled, the solution,
when the emergency was lifted and how the business recovered, plus the timeline. An
emergency of major impact gets the title 《重大事件报告》 (Major Incident Report), which is
what the desk's "Major Incident Reports" queue receives.

Two renderings of one template: ``html`` for the screen (it prints well too) and ``print``,
an A4 layout with a sign-off block, to print or save as PDF from any browser.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from incident_ops.artefacts import ArtefactStore, as_store, join, write_json
from incident_ops.notify.compose import environment
from incident_ops.policy import emergency as flow
from incident_ops.policy.emergency_records import (
    Event,
    final_solution,
    recovered_text,
    timeline,
)

TEMPLATE = "reports/major_incident.html.j2"


def _duration(delta: timedelta | None) -> str:
    if delta is None:
        return "—"
    minutes = max(0, int(delta.total_seconds() // 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} 小时 {minutes} 分 / {hours} h {minutes:02d} min"


def _route(rounds: Sequence[flow.Round]) -> str:
    routes = [r.route for r in rounds]
    if flow.ROUTE_PLAN in routes and flow.ROUTE_VENDORS in routes:
        return "先按预案处置，后组织厂商 / plan first, then vendors (101.3 → 101.4)"
    if flow.ROUTE_PLAN in routes:
        return "按预案处置 / contingency plan (101.3)"
    return "组织厂商分析处理 / vendors (101.4)"


def report_context(brief: flow.Brief, rounds: Sequence[flow.Round],
                   decisions: Sequence[flow.Answer], notes: Sequence[Event], *,
                   generated_at: datetime, tz: str = "Asia/Shanghai") -> dict[str, Any]:
    """Everything the template shows, formatted: every time in ``tz``, labelled with it
    (in the timeline the column heading names the zone once)."""
    local = ZoneInfo(tz)

    def fmt(at: datetime | None) -> str:
        return flow.local_time(at, tz)

    def cell(at: datetime | None) -> str:
        return flow.local_time(at, tz, seconds=True, label=False)

    plan = brief.plan
    inc = brief.incident
    started = brief.started_at
    lifted = flow.lifted_answer(rounds)
    recovery = lifted.params if lifted else {}
    events = timeline(started, brief.started_by, decisions, notes)
    major = brief.major
    return {
        "major": major,
        "title_zh": "重大事件报告" if major else "应急处置报告",
        "title_en": "Major Incident Report" if major else "Emergency Response Report",
        "number": f"EMR-{inc.id}-{started.astimezone(local):%Y%m%d}",
        "emergency_id": brief.emergency_id,
        "incident": {"id": inc.id, "subject": inc.subject, "status": inc.status,
                     "priority": inc.priority, "handler": inc.handler},
        "system": brief.system_label,
        "impact": brief.impact_label,
        "symptoms": brief.symptoms,
        "reporter": brief.reporter,
        "started": fmt(started),
        "started_by": brief.started_by,
        "lifted": fmt(lifted.at if lifted else None),
        "lifted_by": lifted.by if lifted else "—",
        "duration": _duration(lifted.at - started if lifted and lifted.at else None),
        "recovered_at": recovered_text(brief, lifted) if recovery.get("recovered_at")
        else fmt(lifted.at if lifted else None),
        "recovery_note": str(recovery.get("recovery_note") or "") or "—",
        "route": _route(rounds),
        "rounds": [_round_row(r, fmt) for r in rounds],
        "solution": final_solution(brief, rounds),
        "timeline": [{"at": cell(e.at), "step": e.step, "who": e.who, "what": e.what}
                     for e in events],
        "plan": plan,
        "informed": [c.name for c in plan.inform],
        "generated": fmt(generated_at),
        "tz": tz,
    }


def _round_row(r: flow.Round, fmt: Any) -> dict[str, Any]:
    if r.route == flow.ROUTE_PLAN:
        what = "按预案处置 / contingency plan steps"
        detail = r.carried_out.first if r.carried_out else "—"
        by = r.carried_out.by if r.carried_out else "—"
        notes = (r.carried_out.params.get("notes") if r.carried_out else "") or ""
    else:
        what = r.solution.text if r.solution else "—"
        detail = r.solution.vendor if r.solution and r.solution.vendor else "—"
        by = r.proposed.by if r.proposed else "—"
        notes = ""
    plan_route = r.route == flow.ROUTE_PLAN
    return {
        "label": "预案 / plan" if plan_route else f"第 {r.number} 轮 / round {r.number}",
        "what": what, "detail": detail, "by": by, "notes": notes,
        "approvals": [f"{a.by}: {_decision(a.first)} {fmt(a.at)}" for a in r.approvals],
        "change_request": r.change_request, "group_asked": r.group_asked,
        "outcome": flow.OUTCOME_LABELS[r.outcome],
        "lifted_at": fmt(r.lifted.at) if r.lifted else "—",
    }


def _decision(option: str) -> str:
    return "批准 / approved" if option == flow.APPROVE else "驳回 / rejected"


def render_report(context: Mapping[str, Any], *, printable: bool = False) -> str:
    return str(environment().get_template(TEMPLATE).render(**context, printable=printable))


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:120]


def write_report(context: Mapping[str, Any], directory: ArtefactStore | Path,
                 prefix: str = "") -> dict[str, str]:
    """Write ``<number>.html``, ``<number>-print.html`` and ``<number>.json`` under ``prefix``
    of the store (``directory``: a store, or a folder); their keys."""
    store = as_store(directory)
    # Names are built whole: a run id holds dots that with_suffix would take for a suffix.
    stem = join(prefix, safe_name(f"{context['number']}_{context['emergency_id']}"))
    keys = {"html": f"{stem}.html", "print": f"{stem}-print.html", "json": f"{stem}.json"}
    store.write_bytes(keys["html"], render_report(context).encode("utf-8"))
    store.write_bytes(keys["print"], render_report(context, printable=True).encode("utf-8"))
    data = {k: v for k, v in context.items() if k != "plan"}
    write_json(store, keys["json"], data, default=str)
    return keys
