"""The emergency sub-process 101 as pure decisions: params, keys, rounds, timeline, tickets.

Everything here takes plain data (the run's brief, the HITL answers as Airflow hands them
on) and returns plain data; the Airflow task helpers do the I/O. Times come in as
arguments.

Idempotency. Every side effect of the emergency DAG has a key made from the incident, the
emergency (the first run's id, carried into continuation runs) and what it is (``start``,
``approved`` of round 2, ...). Messages are sent once per key (the key is recorded on the
incident ticket's ``Automation Keys`` together with a comment); tickets are created once
per key by the desk itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from incident_ops.config import Contacts
from incident_ops.model import OPEN_STATUSES, Ticket, TicketDraft
from incident_ops.policy.emergency import (
    IMPACT_LABELS,
    SYSTEM_LABELS,
    ContingencyPlan,
    Coverage,
)
from incident_ops.policy.plan import action_key

CHANGE_QUEUE = "Change Requests"
PROBLEM_QUEUE = "Problems"
MAJOR_REPORT_QUEUE = "Major Incident Reports"
KEYS_KEPT = 60  # keys kept on the incident; an emergency of many rounds writes ~6 per round

# The key points at which the group headquarters is told (101 principles).
HQ_START, HQ_ROUTE, HQ_APPROVED, HQ_LIFTED = "start", "route", "approved", "lifted"
ROUTE_PLAN, ROUTE_VENDORS = "plan", "vendors"

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class EmergencyParamError(ValueError):
    """A trigger parameter is wrong; ``field`` names it for the person who triggered."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"param '{field_name}': {message}")
        self.field = field_name


# ------------------------------------------------------------------ params (101 entry)
def check_ticket(ticket: Ticket, incident_queue: str = "Incidents") -> None:
    """An emergency runs on an open incident (it is what 101.1 reports on)."""
    if ticket.queue != incident_queue:
        raise EmergencyParamError("ticket_id", f"ticket {ticket.id} is in queue "
                                  f"'{ticket.queue}', not an incident")
    if ticket.status not in OPEN_STATUSES:
        raise EmergencyParamError("ticket_id", f"incident {ticket.id} is {ticket.status}, not "
                                  "open: an emergency runs on an open incident")


def reporter_address(reporter: str, contacts: Contacts,
                     desk_user_email: str | None = None) -> str:
    """The reporter's e-mail: given as such, or a contacts key / desk user resolved to one."""
    value = reporter.strip()
    if _EMAIL.match(value):
        return value
    person = contacts.people.get(value) or contacts.by_desk_user(value)
    if person is not None and person.email:
        return person.email
    if desk_user_email:
        return desk_user_email
    raise EmergencyParamError("reporter", f"'{reporter}' is neither an e-mail address nor a "
                              "known person or desk user with one")


# ------------------------------------------------------------------------- the brief
def emails(people: Sequence[Any]) -> list[str]:
    return list(dict.fromkeys(p.email for p in people if getattr(p, "email", None)))


def phones(people: Sequence[Any]) -> list[str]:
    return list(dict.fromkeys(p.phone for p in people if getattr(p, "phone", None)))


def make_brief(ticket: Ticket, params: Mapping[str, Any], plan: ContingencyPlan,
               coverage: Coverage, contacts: Contacts, *, reporter_email: str,
               emergency_id: str, run_id: str, now: datetime,
               continuation: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Everything later tasks need, checked once, as JSON for XCom."""
    continuation = dict(continuation or {})
    problem_managers = contacts.role("problem_manager")
    return {
        "emergency_id": emergency_id,
        "run_id": run_id,
        "started_at": continuation.get("started_at") or now.isoformat(),
        "round_offset": int(continuation.get("rounds_done", 0)),
        "history": list(continuation.get("history", [])),
        "incident": {"id": ticket.id, "subject": ticket.subject, "status": ticket.status,
                     "priority": ticket.priority, "created": ticket.created.isoformat(),
                     "handler": ticket.handler, "requester": ticket.requester},
        "params": {k: params[k] for k in ("ticket_id", "system", "impact", "symptoms",
                                          "reporter")},
        "system_label": SYSTEM_LABELS.get(plan.system, plan.system),
        "impact_label": IMPACT_LABELS.get(str(params["impact"]), str(params["impact"])),
        "major": params["impact"] == "major",
        "plan": plan.to_dict(),
        "coverage": asdict(coverage),
        "to": {
            "team": emails(plan.team),
            "team_phones": phones(plan.team),
            "leaders": emails(contacts.role("leaders")),
            "group_hq": emails(contacts.role("group_hq")),
            "inform": emails(plan.inform),
            "vendors": emails(plan.vendors),
            "group_support": emails(plan.group_support) or emails(contacts.role("group_hq")),
            "reporter": reporter_email,
        },
        "problem_manager": problem_managers[0].desk_user if problem_managers else None,
    }


def key(brief: Mapping[str, Any], kind: str, *parts: object) -> str:
    """The idempotency key of one side effect of this emergency."""
    return action_key(f"emergency-{kind}", brief["incident"]["id"], brief["emergency_id"],
                      *parts)


def merged_keys(existing: Sequence[str], new: str) -> tuple[str, ...]:
    kept = [k for k in existing if k != new][-(KEYS_KEPT - 1):]
    return (*kept, new)


# ------------------------------------------------------------------- the HITL answers
@dataclass(frozen=True)
class Answer:
    """One human decision as Airflow's HITL operators return it (their XCom)."""

    step: str
    question: str
    chosen: tuple[str, ...]
    by: str
    at: datetime | None
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_xcom(cls, step: str, question: str, payload: Mapping[str, Any] | None
                  ) -> Answer | None:
        if not payload:
            return None
        user = payload.get("responded_by_user") or {}
        at = payload.get("responded_at")
        if isinstance(at, str):
            at = datetime.fromisoformat(at)
        return cls(step=step, question=question, chosen=tuple(payload.get("chosen_options") or ()),
                   by=str(user.get("name") or user.get("id") or "—"), at=at,
                   params=dict(payload.get("params_input") or {}))

    @property
    def first(self) -> str:
        return self.chosen[0] if self.chosen else ""

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "chosen": list(self.chosen),
                "at": self.at.isoformat() if self.at else None}


@dataclass(frozen=True)
class Solution:
    """What the team and vendors propose in a 101.4 round (the HITL entry form)."""

    text: str
    vendor: str = ""
    interrupts_business: bool = False
    changes_it_component: bool = False
    component: str = ""
    group_support_needed: bool = False
    group_request: str = ""

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Solution:
        return cls(text=str(params.get("solution") or "").strip(),
                   vendor=str(params.get("vendor") or "").strip(),
                   interrupts_business=bool(params.get("interrupts_business")),
                   changes_it_component=bool(params.get("changes_it_component")),
                   component=str(params.get("component") or "").strip(),
                   group_support_needed=bool(params.get("group_support_needed")),
                   group_request=str(params.get("group_request") or "").strip())

    @property
    def needs_change_request(self) -> bool:
        """101.4: interrupting the business or changing an IT component is an emergency change."""
        return self.interrupts_business or self.changes_it_component


def change_request_draft(brief: Mapping[str, Any], round_no: int, solution: Solution,
                         approvals: Sequence[Answer]) -> TicketDraft:
    inc = brief["incident"]
    why = [w for w, on in (("中断业务 / interrupts the business", solution.interrupts_business),
                           (f"变更 IT 组件 / changes an IT component: {solution.component or '—'}",
                            solution.changes_it_component)) if on]
    approved = "\n".join(f"  - {a.question}: {a.first} by {a.by} at {_t(a.at)}"
                         for a in approvals)
    description = (
        f"紧急变更 (101.4) for incident #{inc['id']} {inc['subject']}\n"
        f"Emergency {brief['emergency_id']}, round {round_no}\n\n"
        f"方案 / Solution:\n{solution.text}\n\n"
        f"厂商 / Vendor: {solution.vendor or '—'}\n"
        f"原因 / Why an emergency change: {'; '.join(why)}\n"
        f"审批 / Approved:\n{approved}\n")
    return TicketDraft(
        queue=CHANGE_QUEUE,
        subject=f"紧急变更 / Emergency change: #{inc['id']} round {round_no}: "
                f"{_short(solution.text)}",
        description=description, idempotency_key=key(brief, "change", round_no),
        priority="urgent", requester=brief["to"]["reporter"],
        fields={"system": brief["params"]["system"], "impact": brief["params"]["impact"]},
        refers_to=(str(inc["id"]),))


# ------------------------------------------------------------------------- rounds
@dataclass(frozen=True)
class Round:
    """One pass of 101.4 → 101.5 (or of 101.3 → 101.5 for the plan route, number 0)."""

    number: int
    route: str  # plan | vendors
    solution: Solution | None
    proposed: Answer | None
    approvals: tuple[Answer, ...]
    carried_out: Answer | None  # plan route: the team's confirmation of the steps
    change_request: str | None
    group_asked: bool
    lifted: Answer | None

    @property
    def outcome(self) -> str:
        if any(a.first == REJECT for a in self.approvals):
            return "rejected"
        if self.lifted is None:
            return "open"
        return "lifted" if self.lifted.first == LIFTED else "not lifted"

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "route": self.route, "outcome": self.outcome,
                "solution": asdict(self.solution) if self.solution else None,
                "proposed": self.proposed.to_dict() if self.proposed else None,
                "approvals": [a.to_dict() for a in self.approvals],
                "carried_out": self.carried_out.to_dict() if self.carried_out else None,
                "change_request": self.change_request, "group_asked": self.group_asked,
                "lifted": self.lifted.to_dict() if self.lifted else None}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Round:
        def ans(x: Mapping[str, Any] | None) -> Answer | None:
            if not x:
                return None
            return Answer(x["step"], x["question"], tuple(x["chosen"]), x["by"],
                          datetime.fromisoformat(x["at"]) if x.get("at") else None,
                          dict(x.get("params") or {}))

        return cls(number=d["number"], route=d["route"],
                   solution=Solution(**d["solution"]) if d.get("solution") else None,
                   proposed=ans(d.get("proposed")),
                   approvals=tuple(a for a in map(ans, d.get("approvals") or ()) if a),
                   carried_out=ans(d.get("carried_out")), change_request=d.get("change_request"),
                   group_asked=bool(d.get("group_asked")), lifted=ans(d.get("lifted")))


# The options of the HITL questions: bilingual, and what the report shows.
COVERED_PLAN = "按预案处置 / Follow the plan (101.3)"
COVERED_VENDORS = "预案未覆盖，组织厂商 / Not covered: vendors (101.4)"
STEPS_DONE = "已按预案执行 / Steps carried out"
STEPS_PARTLY = "部分步骤未能执行 / Some steps could not be carried out"
LIFTED = "已解除 / Lifted"
NOT_LIFTED = "未解除 / Not lifted"
SUBMIT = "提交方案 / Submit solution"
APPROVE, REJECT = "Approve", "Reject"  # ApprovalOperator's fixed options

OUTCOME_LABELS = {"lifted": "已解除 / lifted", "not lifted": "未解除 / not lifted",
                  "rejected": "方案驳回 / rejected", "open": "进行中 / open"}

# The questions, as the report names them.
Q_COVERED = "预案是否覆盖 / Covered by the plan?"
Q_STEPS = "按预案处置 / Plan steps carried out?"
Q_LIFTED = "应急是否解除 / Emergency lifted?"
Q_SOLUTION = "厂商方案 / Proposed solution"
Q_APPROVE_LEAD = "应急组长审批 / Team lead approval"
Q_APPROVE_LEADER = "领导审批 / Leader approval"


def suggested_route(coverage: Mapping[str, Any], continuation: bool) -> str:
    """101.2's preselected answer: the plan when its start conditions are met."""
    return COVERED_PLAN if coverage.get("covered") and not continuation else COVERED_VENDORS


def recovery_time(text: str, tz: str) -> datetime | None:
    """The business recovery time an operator typed when lifting (``YYYY-MM-DD HH:MM``, the
    deployment's time zone ``tz``, or ISO with an offset), as aware UTC; None if not one."""
    value = text.strip()
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(tz))
    return moment.astimezone(UTC)


def lifted_answer(rounds: Sequence[Round]) -> Answer | None:
    for r in reversed(rounds):
        if r.lifted is not None and r.lifted.first == LIFTED:
            return r.lifted
    return None


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


# ----------------------------------------------------------------- 101.6 tickets
def _t(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S %Z}".strip() if at else "—"


def _short(text: str, n: int = 60) -> str:
    one = " ".join(text.split())
    return one if len(one) <= n else one[: n - 1] + "…"


def handling_summary(brief: Mapping[str, Any], rounds: Sequence[Round]) -> str:
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


def final_solution(brief: Mapping[str, Any], rounds: Sequence[Round]) -> str:
    for r in reversed(rounds):
        if r.outcome == "lifted":
            if r.route == ROUTE_PLAN:
                steps = ContingencyPlan.from_dict(brief["plan"]).steps
                return "按预案处置 / Followed the contingency plan:\n" + "\n".join(
                    f"{i}. {s.text.both()}" for i, s in enumerate(steps, 1))
            return r.solution.text if r.solution else "—"
    return "—"


def major_report_draft(brief: Mapping[str, Any], rounds: Sequence[Round],
                       lifted: Answer | None) -> TicketDraft:
    inc = brief["incident"]
    return TicketDraft(
        queue=MAJOR_REPORT_QUEUE,
        subject=f"重大事件报告 / Major incident report: #{inc['id']} {_short(inc['subject'])}",
        description=(f"《重大事件报告》 (101.6) — incident #{inc['id']} {inc['subject']}\n"
                     f"系统 / System: {brief['system_label']}\n"
                     f"影响度 / Impact: {brief['impact_label']}\n"
                     f"解除时间 / Lifted: {_t(lifted.at if lifted else None)}\n\n"
                     f"处置经过 / Handling:\n{handling_summary(brief, rounds)}\n\n"
                     "完整报告见附件 / The full report is attached."),
        idempotency_key=key(brief, "major-report"), priority="urgent",
        requester=brief["to"]["reporter"],
        fields={"system": brief["params"]["system"], "impact": brief["params"]["impact"]},
        refers_to=(str(inc["id"]),))


def problem_draft(brief: Mapping[str, Any], rounds: Sequence[Round],
                  lifted: Answer | None) -> TicketDraft:
    """101.6: a problem ticket with the handling details, for the problem manager's RCA."""
    inc = brief["incident"]
    recovery = lifted.params if lifted else {}
    return TicketDraft(
        queue=PROBLEM_QUEUE,
        subject=f"问题 / Problem: emergency on #{inc['id']} {_short(inc['subject'])}",
        description=(f"请组织根本原因分析 / Please organise the root-cause analysis (101.6).\n\n"
                     f"事件 / Incident: #{inc['id']} {inc['subject']}\n"
                     f"系统 / System: {brief['system_label']}; 影响度 / Impact: "
                     f"{brief['impact_label']}\n"
                     f"症状 / Symptoms: {brief['params']['symptoms']}\n\n"
                     f"处置经过 / Handling:\n{handling_summary(brief, rounds)}\n\n"
                     f"最终方案 / Final solution:\n{final_solution(brief, rounds)}\n\n"
                     f"解除 / Lifted: {_t(lifted.at if lifted else None)} by "
                     f"{lifted.by if lifted else '—'}\n"
                     f"业务恢复 / Business recovery: {recovery.get('recovered_at') or '—'} "
                     f"{recovery.get('recovery_note') or ''}\n"
                     f"应急编号 / Emergency: {brief['emergency_id']}"),
        idempotency_key=key(brief, "problem"), priority="high",
        owner=brief.get("problem_manager"), requester=brief["to"]["reporter"],
        fields={"system": brief["params"]["system"], "impact": brief["params"]["impact"]},
        refers_to=(str(inc["id"]),))
