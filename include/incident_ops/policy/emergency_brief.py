"""What every part of the emergency sub-process 101 shares: the brief of a run, the human
answers and the rounds they make, the options of the questions, and the building blocks of
each step's ``Plan`` (the idempotency ``key``, the mail, the note on the incident).

``emergency`` (the decisions), ``emergency_records`` (what 101 writes down) and
``questions`` (the questions to people) all build on this module; it imports none of them.
No I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from incident_ops.model import Ticket
from incident_ops.policy.contingency import (
    IMPACT_LABELS,
    Contact,
    ContingencyPlan,
    Coverage,
)
from incident_ops.policy.plan import NOTIFY, RECORD, Action, Notice, Plan, action_key

PIPELINE = "emergency_response"

# The key points at which the group headquarters is told (101 principles).
HQ_ROUTE, HQ_APPROVED, HQ_LIFTED = "route", "approved", "lifted"
ROUTE_PLAN, ROUTE_VENDORS = "plan", "vendors"

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
    def from_xcom(cls, step: str, question: str, payload: Mapping[str, Any] | None,
                  names: Mapping[str, str] | None = None) -> Answer | None:
        """``names``: people's names by Airflow login (auth managers often know only the
        login), so reports say who decided, not which account."""
        if not payload:
            return None
        user = dict(payload.get("responded_by_user") or {})
        if names and user.get("id") in names:
            user["name"] = names[str(user["id"])]
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

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Answer:
        return cls(d["step"], d["question"], tuple(d["chosen"]), d["by"],
                   datetime.fromisoformat(d["at"]) if d.get("at") else None,
                   dict(d.get("params") or {}))


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

    def to_dict(self) -> dict[str, Any]:
        """For templates and XCom: the fields plus whether it needs an emergency change."""
        return {**asdict(self), "needs_change_request": self.needs_change_request}


# The options of the HITL questions: bilingual, and what the report shows.
COVERED_PLAN = "按预案处置 / Follow the plan (101.3)"
COVERED_VENDORS = "预案未覆盖，组织厂商 / Not covered: vendors (101.4)"
STEPS_DONE = "已按预案执行 / Steps carried out"
STEPS_PARTLY = "部分步骤未能执行 / Some steps could not be carried out"
LIFTED = "已解除 / Lifted"
NOT_LIFTED = "未解除 / Not lifted"
SUBMIT = "提交方案 / Submit solution"
APPROVE, REJECT = "批准 / Approve", "驳回 / Reject"

OUTCOME_LABELS = {"lifted": "已解除 / lifted", "not lifted": "未解除 / not lifted",
                  "rejected": "方案驳回 / rejected", "open": "进行中 / open"}

# The questions, as the report names them.
Q_COVERED = "预案是否覆盖 / Covered by the plan?"
Q_STEPS = "按预案处置 / Plan steps carried out?"
Q_LIFTED = "应急是否解除 / Emergency lifted?"
Q_SOLUTION = "厂商方案 / Proposed solution"
Q_APPROVE_LEAD = "应急组长审批 / Team lead approval"
Q_APPROVE_LEADER = "领导审批 / Leader approval"


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
                "solution": self.solution.to_dict() if self.solution else None,
                "proposed": self.proposed.to_dict() if self.proposed else None,
                "approvals": [a.to_dict() for a in self.approvals],
                "carried_out": self.carried_out.to_dict() if self.carried_out else None,
                "change_request": self.change_request, "group_asked": self.group_asked,
                "lifted": self.lifted.to_dict() if self.lifted else None}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Round:
        def ans(x: Mapping[str, Any] | None) -> Answer | None:
            return Answer.from_dict(x) if x else None

        solution = d.get("solution")
        return cls(number=d["number"], route=d["route"],
                   solution=Solution(**{k: v for k, v in solution.items()
                                        if k != "needs_change_request"}) if solution else None,
                   proposed=ans(d.get("proposed")),
                   approvals=tuple(a for a in map(ans, d.get("approvals") or ()) if a),
                   carried_out=ans(d.get("carried_out")), change_request=d.get("change_request"),
                   group_asked=bool(d.get("group_asked")), lifted=ans(d.get("lifted")))


def local_time(at: datetime | None, tz: str, *, seconds: bool = False,
               label: bool = True) -> str:
    """A moment as the deployment's people read it: in its time zone ``tz``, labelled with
    the zone (``label=False`` where a heading already names it). Naive times are UTC."""
    if at is None:
        return "—"
    moment = at if at.tzinfo else at.replace(tzinfo=UTC)
    text = f"{moment.astimezone(ZoneInfo(tz)):%Y-%m-%d %H:%M{':%S' if seconds else ''}}"
    return f"{text} ({tz})" if label else text


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


# ------------------------------------------------------------------------- the brief
@dataclass(frozen=True)
class Recipients:
    team: tuple[str, ...]
    team_phones: tuple[str, ...]
    leaders: tuple[str, ...]
    group_hq: tuple[str, ...]
    inform: tuple[str, ...]
    vendors: tuple[str, ...]
    group_support: tuple[str, ...]
    reporter: str


@dataclass(frozen=True)
class Brief:
    """What the first task checked and resolved, for every later step of the run."""

    emergency_id: str  # the first run's id, kept by continuation runs
    run_id: str
    started_at: datetime
    started_by: str
    round_offset: int  # rounds done by earlier runs of this emergency
    history: tuple[Round, ...]  # those rounds
    incident: Ticket
    system: str
    impact: str
    symptoms: str
    reporter: str
    plan: ContingencyPlan
    coverage: Coverage
    to: Recipients
    problem_manager: str | None
    dry_run: bool = False
    actions_url: str | None = None  # where this run's questions are answered (Airflow UI)
    tz: str = "Asia/Shanghai"  # the deployment's time zone: every time people read is in it
    # Who answers and who is told, by role (``questions.ROLES``): the plan's team and team
    # lead, contacts.yaml's leaders, incident manager and management (and the system's).
    people: dict[str, tuple[Contact, ...]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # what validate noticed but did not refuse
    airflow_url: str | None = None  # the Airflow UI people open (links in messages)
    # Started anyway beside the incident's running emergency (issue 24): its run(s), and why.
    separate_from: tuple[str, ...] = ()
    separate_reason: str | None = None

    @property
    def incident_id(self) -> str:
        return self.incident.id

    def names(self) -> dict[str, str]:
        """The people of this emergency by Airflow login."""
        return {c.airflow_user: c.name for people in self.people.values() for c in people
                if c.airflow_user}

    @property
    def system_label(self) -> str:
        return self.plan.system_label or self.plan.system

    @property
    def impact_label(self) -> str:
        return IMPACT_LABELS.get(self.impact, self.impact)

    @property
    def major(self) -> bool:
        return self.impact == "major"

    @property
    def scope(self) -> str:
        """The apply engine's scope (desk lease and outbox) of this emergency."""
        return f"{PIPELINE}:{self.emergency_id}"

    def params(self) -> dict[str, Any]:
        return {"ticket_id": self.incident.id, "system": self.system, "impact": self.impact,
                "symptoms": self.symptoms, "reporter": self.reporter}

    def to_dict(self) -> dict[str, Any]:
        inc = self.incident
        return {
            "emergency_id": self.emergency_id, "run_id": self.run_id,
            "started_at": self.started_at.isoformat(), "started_by": self.started_by,
            "round_offset": self.round_offset, "history": [r.to_dict() for r in self.history],
            "incident": {"id": inc.id, "subject": inc.subject, "status": inc.status,
                         "priority": inc.priority, "created": inc.created.isoformat(),
                         "handler": inc.handler, "requester": inc.requester},
            "system": self.system, "impact": self.impact, "symptoms": self.symptoms,
            "reporter": self.reporter, "plan": self.plan.to_dict(),
            "coverage": asdict(self.coverage), "to": asdict(self.to),
            "problem_manager": self.problem_manager, "dry_run": self.dry_run,
            "actions_url": self.actions_url, "tz": self.tz,
            "people": {role: [asdict(c) for c in who] for role, who in self.people.items()},
            "warnings": list(self.warnings), "airflow_url": self.airflow_url,
            "separate_from": list(self.separate_from), "separate_reason": self.separate_reason,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Brief:
        inc = d["incident"]
        created = datetime.fromisoformat(inc["created"])
        cov = d["coverage"]
        return cls(
            emergency_id=str(d["emergency_id"]), run_id=str(d["run_id"]),
            started_at=datetime.fromisoformat(d["started_at"]),
            started_by=str(d.get("started_by") or "—"), round_offset=int(d["round_offset"]),
            history=tuple(Round.from_dict(r) for r in d.get("history") or ()),
            incident=Ticket(id=str(inc["id"]), subject=inc["subject"], status=inc["status"],
                            priority=inc["priority"], created=created, updated=created,
                            handler=inc.get("handler"), requester=inc.get("requester")),
            system=d["system"], impact=d["impact"], symptoms=d["symptoms"],
            reporter=d["reporter"], plan=ContingencyPlan.from_dict(d["plan"]),
            coverage=Coverage(bool(cov["covered"]), tuple(cov["matched"]), cov["reason"]),
            to=_recipients(d["to"]),
            problem_manager=d.get("problem_manager"), dry_run=bool(d.get("dry_run")),
            actions_url=d.get("actions_url"), tz=str(d.get("tz") or "Asia/Shanghai"),
            people={role: tuple(Contact(**c) for c in who)
                    for role, who in (d.get("people") or {}).items()},
            warnings=tuple(d.get("warnings") or ()), airflow_url=d.get("airflow_url"),
            separate_from=tuple(d.get("separate_from") or ()),
            separate_reason=d.get("separate_reason"))


def _recipients(d: Mapping[str, Any]) -> Recipients:
    lists = {k: tuple(d.get(k) or ()) for k in ("team", "team_phones", "leaders", "group_hq",
                                                 "inform", "vendors", "group_support")}
    return Recipients(**lists, reporter=str(d["reporter"]))


def key(brief: Brief, kind: str, *parts: object) -> str:
    """The idempotency key of one side effect of this emergency."""
    return action_key(f"emergency-{kind}", brief.incident_id, brief.emergency_id, *parts)


# ------------------------------------------------------ building blocks of a step's plan
def emergency_plan(brief: Brief, run_id: str, *actions: Action) -> Plan:
    """A step's plan: its actions, in order, under the emergency pipeline."""
    return Plan(pipeline=PIPELINE, run_id=run_id, actions=list(actions))


def mail_context(brief: Brief, run_id: str, **extra: Any) -> dict[str, Any]:
    """What every emergency message template may show (JSON: it travels in the plan)."""
    return {"id": brief.incident_id, "subject": brief.incident.subject, "run_id": run_id,
            "system": brief.system_label, "impact": brief.impact_label, "major": brief.major,
            "symptoms": brief.symptoms, "reporter": brief.reporter,
            "emergency_id": brief.emergency_id, "plan": brief.plan.to_dict(),
            "actions_url": brief.actions_url, "tz": brief.tz,
            "warnings": list(brief.warnings), **extra}


def unique_addresses(*groups: Sequence[str]) -> tuple[str, ...]:
    """The addresses of all groups, each once, in order (empty ones left out)."""
    return tuple(dict.fromkeys(a for g in groups for a in g if a))


def mail_notice(template: str, to: Sequence[str], context: dict[str, Any],
                cc: Sequence[str] = (), attachments: tuple[dict[str, str], ...] = ()) -> Notice:
    """A mail to ``to``, copied to those of ``cc`` not already in it (each address once)."""
    to_u = unique_addresses(to)
    return Notice(template, to_u, context,
                  cc=tuple(a for a in unique_addresses(cc) if a not in to_u),
                  attachments=attachments)


def incident_note(brief: Brief, step: str, rule: str, kind: str, comment: str, reason: str,
                  *parts: object, notices: tuple[Notice, ...] = (),
                  fields: dict[str, Any] | None = None) -> Action:
    """An action recorded on the incident: its key, a comment, maybe fields, messages."""
    return Action(kind=NOTIFY if not fields else RECORD, ticket_id=brief.incident_id,
                  step=step, rule=rule, key=key(brief, kind, *parts), reason=reason,
                  comment=f"[{step}] {comment}\n(emergency_response run {brief.run_id})",
                  fields=dict(fields or {}), notices=tuple(n for n in notices if n.to))
