"""The emergency sub-process 101 as pure decisions: the brief, the answers, the rounds, and
each step's ``Plan`` of side effects.

``Brief`` is everything the run's later steps need, checked once by the first task and
parsed once per task from its JSON (XCom). The ``decide_*`` functions take it, the human
decisions (``Answer``, as Airflow's HITL operators return them) and the time, and return a
``Plan`` that the one apply engine carries out like any other pipeline's: mails and SMS to
the team, leaders and group headquarters, the emergency change request, the Major Incident
Report and the problem ticket, the recovery time on the incident. No I/O here.

Idempotency. Every action's key is made from the incident, the emergency (the first run's
id, carried into continuation runs) and what it is (``hq-start``, ``approved`` of round 2,
...). The engine records it on the incident (planned without a version: written on a fresh
read, skipped when there), so a retried task or a continuation run never repeats one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from incident_ops.model import OPEN_STATUSES, Ticket
from incident_ops.policy.contingency import (
    IMPACT_LABELS,
    Contact,
    ContingencyPlan,
    Coverage,
)
from incident_ops.policy.plan import CREATE, NOTIFY, RECORD, Action, Notice, Plan, action_key
from incident_ops.reference import Contacts

PIPELINE = "emergency_response"

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


def emails(people: Sequence[Any]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p.email for p in people if getattr(p, "email", None)))


def phones(people: Sequence[Any]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p.phone for p in people if getattr(p, "phone", None)))


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


def suggested_route(coverage: Coverage, continuation: bool) -> str:
    """101.2's preselected answer: the plan when its start conditions are met."""
    return COVERED_PLAN if coverage.covered and not continuation else COVERED_VENDORS


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


def make_brief(ticket: Ticket, params: Mapping[str, Any], plan: ContingencyPlan,
               coverage: Coverage, contacts: Contacts, *, reporter_email: str,
               emergency_id: str, run_id: str, now: datetime, started_by: str = "—",
               continuation: Mapping[str, Any] | None = None, dry_run: bool = False,
               actions_url: str | None = None, tz: str = "Asia/Shanghai",
               warnings: Sequence[str] = (), airflow_url: str | None = None,
               separate_from: Sequence[str] = (), separate_reason: str | None = None) -> Brief:
    """The brief of a run, from its checked params (a continuation carries the history)."""
    from incident_ops.policy.questions import people_by_role

    continuation = dict(continuation or {})
    problem_managers = contacts.role("problem_manager")
    started = continuation.get("started_at")
    return Brief(
        emergency_id=emergency_id, run_id=run_id,
        started_at=datetime.fromisoformat(started) if started else now,
        started_by=started_by, round_offset=int(continuation.get("rounds_done", 0)),
        history=tuple(Round.from_dict(r) for r in continuation.get("history", [])),
        incident=ticket, system=str(params["system"]), impact=str(params["impact"]),
        symptoms=str(params["symptoms"]), reporter=str(params["reporter"]), plan=plan,
        coverage=coverage,
        to=Recipients(
            team=emails(plan.team), team_phones=phones(plan.team),
            leaders=emails(contacts.role("leaders")),
            group_hq=emails(contacts.role("group_hq")), inform=emails(plan.inform),
            vendors=emails(plan.vendors),
            group_support=emails(plan.group_support) or emails(contacts.role("group_hq")),
            reporter=reporter_email),
        problem_manager=problem_managers[0].desk_user if problem_managers else None,
        dry_run=dry_run, actions_url=actions_url, tz=tz,
        people=people_by_role(plan, contacts, str(params["system"])),
        warnings=tuple(warnings), airflow_url=airflow_url,
        separate_from=tuple(separate_from), separate_reason=separate_reason)


def key(brief: Brief, kind: str, *parts: object) -> str:
    """The idempotency key of one side effect of this emergency."""
    return action_key(f"emergency-{kind}", brief.incident_id, brief.emergency_id, *parts)


# ---------------------------------------------------------------------- the decisions
def _plan(brief: Brief, run_id: str, *actions: Action) -> Plan:
    return Plan(pipeline=PIPELINE, run_id=run_id, actions=list(actions))


def mail_context(brief: Brief, run_id: str, **extra: Any) -> dict[str, Any]:
    """What every emergency message template may show (JSON: it travels in the plan)."""
    return {"id": brief.incident_id, "subject": brief.incident.subject, "run_id": run_id,
            "system": brief.system_label, "impact": brief.impact_label, "major": brief.major,
            "symptoms": brief.symptoms, "reporter": brief.reporter,
            "emergency_id": brief.emergency_id, "plan": brief.plan.to_dict(),
            "actions_url": brief.actions_url, "tz": brief.tz,
            "warnings": list(brief.warnings), **extra}


def _unique(*groups: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(a for g in groups for a in g if a))


def _mail(template: str, to: Sequence[str], context: dict[str, Any],
          cc: Sequence[str] = (), attachments: tuple[dict[str, str], ...] = ()) -> Notice:
    to_u = _unique(to)
    return Notice(template, to_u, context, cc=tuple(a for a in _unique(cc) if a not in to_u),
                  attachments=attachments)


def _note(brief: Brief, step: str, rule: str, kind: str, comment: str, reason: str,
          *parts: object, notices: tuple[Notice, ...] = (), fields: dict[str, Any] | None = None
          ) -> Action:
    """An action recorded on the incident: its key, a comment, maybe fields, messages."""
    return Action(kind=NOTIFY if not fields else RECORD, ticket_id=brief.incident_id,
                  step=step, rule=rule, key=key(brief, kind, *parts), reason=reason,
                  comment=f"[{step}] {comment}\n(emergency_response run {brief.run_id})",
                  fields=dict(fields or {}), notices=tuple(n for n in notices if n.to))


def keypoint(brief: Brief, run_id: str, step: str, point: str, what: str, *parts: object,
             **extra: Any) -> Action:
    """Tell the group headquarters of a key point, once (101 principles)."""
    email = _mail("emergency_keypoint", brief.to.group_hq,
                  mail_context(brief, run_id, point=point, what=what, **extra),
                  cc=brief.to.leaders)
    return _note(brief, step, f"emergency.hq-{point}", f"hq-{point}",
                 f"集团公司已通报 / group HQ informed: {what}", f"group HQ told: {point}",
                 *parts, notices=(email,))


def decide_start(brief: Brief, run_id: str) -> Plan:
    """101.1: convene the team, inform the provincial centre leaders and the group."""
    to = _unique(brief.to.team, brief.to.leaders, brief.to.group_hq, brief.to.inform)
    ctx = mail_context(brief, run_id, coverage=asdict(brief.coverage),
                       continuation=bool(brief.round_offset))
    notices = (_mail("emergency_start", to, ctx),
               Notice("emergency_start", brief.to.team_phones, ctx, channel="sms"))
    start = _note(
        brief, "101.1", "emergency.start", "hq-start",
        f"应急启动，已通知应急小组、省中心领导与集团公司 / emergency started; team, provincial "
        f"leaders and the group informed ({len(to)} addresses, {len(brief.to.team_phones)} SMS)",
        f"initial report to {len(to)} addresses, SMS to {len(brief.to.team_phones)}",
        notices=notices)
    if not brief.separate_from:
        return _plan(brief, run_id, start)
    # Before the start: the desk shows why a second emergency of the incident began.
    return _plan(brief, run_id, _note(
        brief, "101.1", "emergency.start-anyway", "start-anyway",
        f"另行启动：该事件单的应急 {', '.join(brief.separate_from)} 仍在进行，发起人 "
        f"{brief.started_by} 确认这是另一起应急 / started anyway beside the running "
        f"emergency {', '.join(brief.separate_from)} by {brief.started_by}, as a separate "
        f"emergency: {brief.separate_reason}",
        "started anyway beside a running emergency of the incident"), start)


def decide_route(brief: Brief, run_id: str, route: str, n: int | None = None,
                 rounds: Sequence[Round] = ()) -> Plan:
    """101.2 → 101.3 or 101.4: the group hears which route; vendors are engaged (round n)."""
    if route == ROUTE_PLAN:
        return _plan(brief, run_id, keypoint(
            brief, run_id, "101.3", HQ_ROUTE, "按预案处置 / the contingency plan is followed "
            "(101.3)", ROUTE_PLAN))
    ctx = mail_context(brief, run_id, round=n, rounds=[r.to_dict() for r in rounds])
    vendors = _mail("emergency_vendors", brief.to.vendors or brief.to.team, ctx,
                    cc=brief.to.team)
    return _plan(brief, run_id,
                 keypoint(brief, run_id, "101.4", HQ_ROUTE,
                          "组织厂商分析处理 / vendors engaged (101.4)", ROUTE_VENDORS),
                 _note(brief, "101.4", "emergency.vendors", "vendors",
                       f"第 {n} 轮：已组织厂商分析 / round {n}: vendors engaged "
                       f"({', '.join(brief.to.vendors) or 'team only'})",
                       f"round {n}: vendors engaged", n, notices=(vendors,)))


def decide_carry_out(brief: Brief, run_id: str, n: int, solution: Solution,
                     approvals: Sequence[Answer]) -> Plan:
    """101.4 after approval: tell the group, raise the emergency change, ask the group centre."""
    from incident_ops.policy.emergency_records import change_request_draft

    who = ", ".join(a.by for a in approvals)
    actions = [keypoint(brief, run_id, "101.4", HQ_APPROVED,
                        f"第 {n} 轮方案已批准 / round {n} solution approved by {who}: "
                        f"{solution.text}", n, solution=solution.to_dict())]
    if solution.needs_change_request:
        draft = change_request_draft(brief, n, solution, approvals)
        actions.append(Action(
            kind=CREATE, ticket_id=brief.incident_id, step="101.4",
            rule="emergency.change-request", key=key(brief, "change-noted", n),
            reason=f"round {n}: emergency change request (interrupts the business or changes "
                   "an IT component)", create=draft,
            comment=f"[101.4] 紧急变更单 #{{created_id}} 已创建 / emergency change request "
                    f"#{{created_id}} raised (101.4)\n(emergency_response run {brief.run_id})"))
    if solution.group_support_needed:
        email = _mail("emergency_group_support", brief.to.group_support,
                      mail_context(brief, run_id, round=n, solution=solution.to_dict()),
                      cc=brief.to.leaders)
        actions.append(_note(brief, "101.4", "emergency.group-support", "group-support",
                             f"已请求集团中心支持 / group centre asked to step in: "
                             f"{solution.group_request or solution.text}",
                             f"round {n}: group centre asked", n, notices=(email,)))
    return _plan(brief, run_id, *actions)


def decide_escalation(brief: Brief, run_id: str, rounds: Sequence[Round]) -> Plan:
    """Every round of this run done and not lifted: tell management, continue in a new run."""
    done = max((r.number for r in rounds), default=0)
    email = _mail("emergency_escalation", _unique(brief.to.leaders, brief.to.group_hq),
                  mail_context(brief, run_id, rounds=[r.to_dict() for r in rounds], done=done),
                  cc=brief.to.team)
    return _plan(brief, run_id, _note(
        brief, "101.5", "emergency.escalate", "escalate",
        f"{done} 轮后仍未解除，转入续跑 / not lifted after {done} rounds; continuing in a new "
        "run", f"not lifted after {done} rounds", done, notices=(email,)))


def decide_lifted(brief: Brief, run_id: str, lifted: Answer, incident: Ticket,
                  tz: str | None = None) -> Plan:
    """101.5 → 101.6: the group hears it is lifted; the business recovery time typed when
    lifting goes onto the incident (100.6.4 asks for it before a fault may close), unless the
    ticket already holds one. Every time is said in the deployment's zone, labelled."""
    tz = tz or brief.tz
    typed = str(lifted.params.get("recovered_at") or "")
    moment = recovery_time(typed, tz)
    recovered = local_time(moment, tz) if moment else (typed or "—")
    what = (f"应急已解除 / emergency lifted ({lifted.by}, {local_time(lifted.at, tz)}); "
            f"业务恢复 / business recovered: {recovered}" if lifted.at
            else "应急已解除 / emergency lifted")
    current = incident.recovered_at
    fields: dict[str, Any] = {}
    if moment is None:
        comment = (f"解除时未给出可识别的业务恢复时间（{typed or '空'}），请在工单上填写 / no "
                   f"business recovery time understood from the lifted form ({typed!r}, "
                   f"expected YYYY-MM-DD HH:MM in {tz}): set Business Recovery Time on the "
                   "ticket")
    elif current is not None:
        comment = (f"工单已有业务恢复时间 {local_time(current, tz)}，保留；解除表单为 "
                   f"{recovered} / the ticket already holds a recovery time, kept; the "
                   f"lifted form said {recovered}")
    else:
        comment = f"业务恢复时间已记录 / business recovery time recorded: {recovered}"
        fields = {"recovered_at": moment}
    record = _note(brief, "101.5", "emergency.recovery-time", "recovery-time", comment,
                   "business recovery time onto the incident", fields=fields)
    if not fields:
        record = replace(record, kind=RECORD)
    return _plan(brief, run_id, keypoint(brief, run_id, "101.5", HQ_LIFTED, what), record)


def input_warnings(ticket: Ticket, system: str, impact: str,
                   labels: Mapping[str, str] | None = None) -> list[str]:
    """What the trigger form chose against what the incident records: not refused (ops may
    know better), but said in the log, the first question and the start mail, because the
    mails and SMS go to the chosen system's team."""
    out = []
    labels = labels or {}
    if ticket.system and ticket.system != system:
        out.append(f"所选系统 {labels.get(system, system)} 与工单 #{ticket.id} 记录的系统 "
                   f"{labels.get(ticket.system, ticket.system)} 不一致：通知发给所选系统的"
                   f"应急小组 / the trigger chose system '{system}' but incident #{ticket.id} "
                   f"records '{ticket.system}': the chosen system's team is the one notified")
    elif not ticket.system:
        out.append(f"工单 #{ticket.id} 未记录系统 / incident #{ticket.id} records no system: "
                   f"'{system}' as chosen")
    if ticket.impact and ticket.impact != impact:
        out.append(f"所选影响度 {IMPACT_LABELS.get(impact, impact)} 与工单记录的 "
                   f"{IMPACT_LABELS.get(ticket.impact, ticket.impact)} 不一致 / the trigger chose "
                   f"impact '{impact}' but the incident records '{ticket.impact}'")
    return out


MIME = {"html": "text/html", "print": "text/html", "pdf": "application/pdf"}


def report_files(paths: Mapping[str, str]) -> tuple[dict[str, str], ...]:
    """The report's files to attach: the screen page, and the PDF (the formal document) or,
    without one, the printable page."""
    kinds = ("html", "pdf") if paths.get("pdf") else ("html", "print")
    return tuple({"path": paths[k], "name": paths[k].rsplit("/", 1)[-1], "mime": MIME[k],
                  "kind": k} for k in kinds)


def decide_report(brief: Brief, run_id: str, report: Mapping[str, Any],
                  paths: Mapping[str, str]) -> Plan:
    """101.6: the report, mailed to the reporter, the leaders and the group, files attached
    (the screen page and the PDF, or the printable page where no PDF could be made)."""
    files = report_files(paths)
    email = _mail("emergency_report", _unique((brief.to.reporter,), brief.to.leaders,
                                              brief.to.group_hq),
                  mail_context(brief, run_id, report=dict(report)), attachments=files)
    return _plan(brief, run_id, _note(
        brief, "101.6", "emergency.report", "report-mail",
        f"善后报告已发送报告人、领导与集团公司 / aftermath report sent to the reporter, the "
        f"leaders and the group: {paths['html']}", "aftermath report mailed",
        notices=(email,)))


def decide_major_report(brief: Brief, run_id: str, rounds: Sequence[Round],
                        report: Mapping[str, Any], paths: Mapping[str, str]) -> Plan:
    """101.6: a major emergency's 《重大事件报告》 goes into the desk, report attached."""
    from incident_ops.policy.emergency_records import major_report_draft

    if not brief.major:
        return _plan(brief, run_id)
    files = tuple({**f, "note": f"《重大事件报告》 {report['number']} ({f['kind']})"}
                  for f in report_files(paths))
    return _plan(brief, run_id, Action(
        kind=CREATE, ticket_id=brief.incident_id, step="101.6", rule="emergency.major-report",
        key=key(brief, "major-report-noted"), reason="major impact: the Major Incident Report",
        create=major_report_draft(brief, rounds, lifted_answer(rounds)), attachments=files,
        comment="[101.6] 《重大事件报告》已提交 / Major Incident Report submitted: #{created_id}"
                f"\n(emergency_response run {brief.run_id})"))


def decide_problem(brief: Brief, run_id: str, rounds: Sequence[Round]) -> Plan:
    """101.6: a problem ticket with the handling details, to the problem manager."""
    from incident_ops.policy.emergency_records import problem_draft

    return _plan(brief, run_id, Action(
        kind=CREATE, ticket_id=brief.incident_id, step="101.6", rule="emergency.problem",
        key=key(brief, "problem-noted"), reason="the problem ticket for root-cause analysis",
        create=problem_draft(brief, rounds, lifted_answer(rounds)),
        comment=f"[101.6] 问题单 #{{created_id}} 已提交问题经理 {brief.problem_manager or ''} / "
                f"problem #{{created_id}} handed to the problem manager\n(emergency_response "
                f"run {brief.run_id})"))
