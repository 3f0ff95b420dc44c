"""The emergency's questions to people (101.2–101.5): who answers, who is told, reminded and
escalated to, and which answers go back to be given again. Pure: the brief, the question,
the times in; plans and problems out.

Who answers (``WHO_ANSWERS``), by the roles of 101 and the contingency plan:

- 101.2 *covered by the plan?* and 101.5 *lifted?*: the emergency team, with the incident
  manager who convenes it (101.1);
- 101.3 *steps carried out* and 101.4 *the solution*: the team (it organises the vendors);
- 101.4 approvals: the team lead (the plan's leader) and the provincial centre leaders
  (contacts.yaml ``leaders``): "approved by the team and the leaders".

Each person's Airflow login is ``airflow_user`` (contacts.yaml, or the plan's own entry);
the question is assigned to those logins, and Airflow refuses an answer from anyone else.

The chase (the plan's ``questions`` cadence): when a question is asked, its people get a mail
and an SMS with a link to it; a reminder every ``remind_every_minutes`` while it waits (at
most ``max_reminders``); after ``escalate_after_minutes`` the incident manager and
management are told, once. Every message is an action with its own idempotency key (the
question is this run's task; a reminder is counted from when it was asked), so a retried
task or a second worker never sends a copy.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from incident_ops.policy.contingency import Cadence, Contact, ContingencyPlan
from incident_ops.policy.emergency_brief import (
    LIFTED,
    STEPS_PARTLY,
    Brief,
    emergency_plan,
    incident_note,
    key,
    local_time,
    mail_context,
    mail_notice,
    recovery_time,
)
from incident_ops.policy.plan import NOTIFY, Action, Notice, Plan
from incident_ops.reference import Contacts, Person

# Roles (keys of Brief.people).
TEAM, TEAM_LEAD, LEADERS, INCIDENT_MANAGER, MANAGEMENT = (
    "team", "team_lead", "leaders", "incident_manager", "management")
ROLE_LABELS = {TEAM: "应急小组 / emergency team", TEAM_LEAD: "应急组长 / team lead",
               LEADERS: "省中心领导 / provincial centre leaders",
               INCIDENT_MANAGER: "事件经理 / incident manager", MANAGEMENT: "管理层 / management"}

# Kinds of question (what the prepare function of each HITL task says it asks).
COVERED, STEPS, SOLUTION, APPROVE_LEAD, APPROVE_LEADER, LIFTED_Q = (
    "covered", "steps", "solution", "approve_lead", "approve_leader", "lifted")
WHO_ANSWERS: dict[str, tuple[str, ...]] = {
    COVERED: (TEAM, INCIDENT_MANAGER),
    STEPS: (TEAM,),
    SOLUTION: (TEAM,),
    APPROVE_LEAD: (TEAM_LEAD,),
    APPROVE_LEADER: (LEADERS,),
    LIFTED_Q: (TEAM, INCIDENT_MANAGER),
}
ESCALATE_TO = (INCIDENT_MANAGER, MANAGEMENT)
# How far ahead of the clock a recovery time may be (clocks of people and servers differ).
CLOCK_SLACK = timedelta(minutes=2)
RECOVERY_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}$")


def _contact(p: Person, duty: str) -> Contact:
    return Contact(p.name, p.email, p.phone, duty, p.key, p.airflow_user)


def _unique(people: Sequence[Contact]) -> tuple[Contact, ...]:
    seen: set[str] = set()
    out = []
    for c in people:
        mark = c.airflow_user or c.email or c.phone or c.name
        if mark not in seen:
            seen.add(mark)
            out.append(c)
    return tuple(out)


def people_by_role(plan: ContingencyPlan, contacts: Contacts, system: str
                   ) -> dict[str, tuple[Contact, ...]]:
    """The people of each role for an emergency on ``system`` under ``plan``."""
    def role(name: str) -> list[Contact]:
        return [_contact(p, name) for p in contacts.role(name)]

    return {
        TEAM_LEAD: (plan.leader,),
        TEAM: _unique(plan.team),
        LEADERS: _unique(role(LEADERS)),
        INCIDENT_MANAGER: _unique(role(INCIDENT_MANAGER)),
        MANAGEMENT: _unique([*role(MANAGEMENT), *(_contact(p, MANAGEMENT) for p in
                                                  contacts.for_system(system, MANAGEMENT))]),
    }


def people_of(brief: Brief, roles: Sequence[str]) -> tuple[Contact, ...]:
    return _unique([c for r in roles for c in brief.people.get(r, ())])


def assignees(brief: Brief, kind: str) -> tuple[Contact, ...]:
    """Who answers a question of ``kind``."""
    return people_of(brief, WHO_ANSWERS[kind])


def hitl_users(people: Sequence[Contact]) -> list[dict[str, str]] | None:
    """Airflow's ``assigned_users`` for these people (those with a login); None (anyone with
    access may answer) when none has one."""
    users = {c.airflow_user: {"id": c.airflow_user, "name": c.name}
             for c in people if c.airflow_user}
    return list(users.values()) or None


def who_answers_md(brief: Brief, kind: str) -> str:
    """A line for the question's body: whose question it is (and whether Airflow enforces it)."""
    people = assignees(brief, kind)
    roles = " + ".join(ROLE_LABELS[r] for r in WHO_ANSWERS[kind])
    names = ", ".join(f"{c.name} (`{c.airflow_user}`)" if c.airflow_user else c.name
                      for c in people) or "—"
    if hitl_users(people):
        rule = "仅以上人员可回答 / only they can answer"
    else:
        rule = "⚠️ 预案未给出 Airflow 账号，任何有权限的用户均可回答 / the plan names no Airflow " \
               "login: anyone with access may answer"
    return f"**回答人 / Who answers** — {roles}: {names}. {rule}."


# ------------------------------------------------------------------------ the chase
@dataclass(frozen=True)
class Question:
    """One waiting question of this run, as its messages name it."""

    task_id: str
    kind: str
    step: str  # 101.2 ... 101.5
    subject: str  # as the people see it in Airflow
    link: str | None  # the question's page in the Airflow UI

    def to_dict(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "kind": self.kind, "step": self.step,
                "subject": self.subject, "link": self.link}


def _minutes(value: float | None) -> timedelta | None:
    return timedelta(minutes=value) if value else None


def reminders_due(cadence: Cadence, asked_at: datetime, now: datetime) -> int:
    """How many reminders are due by ``now`` (the count, not only the new ones)."""
    every = _minutes(cadence.remind_every_minutes)
    if every is None or now <= asked_at:
        return 0
    return min(cadence.max_reminders, math.floor((now - asked_at) / every))


def escalation_due(cadence: Cadence, asked_at: datetime, now: datetime) -> bool:
    after = _minutes(cadence.escalate_after_minutes)
    return after is not None and now >= asked_at + after


def next_wake(cadence: Cadence, asked_at: datetime, now: datetime) -> datetime | None:
    """When the question must next look at the clock (a reminder or the escalation falls
    due), or None when nothing more is due (it then waits for its answer only)."""
    times = []
    every = _minutes(cadence.remind_every_minutes)
    if every is not None:
        n = reminders_due(cadence, asked_at, now)
        if n < cadence.max_reminders:
            times.append(asked_at + every * (n + 1))
    after = _minutes(cadence.escalate_after_minutes)
    if after is not None and now < asked_at + after:
        times.append(asked_at + after)
    return min(times) if times else None


def _messages(brief: Brief, template_kind: str, q: Question, people: Sequence[Contact],
              run_id: str, *, sms: bool = True, cc: Sequence[Contact] = (),
              **extra: Any) -> tuple[Notice, ...]:
    ctx = mail_context(brief, run_id, kind=template_kind, question=q.to_dict(),
                       answerers=[c.name for c in assignees(brief, q.kind)],
                       roles=" + ".join(ROLE_LABELS[r] for r in WHO_ANSWERS[q.kind]),
                       **extra)
    mail = mail_notice("emergency_question", [c.email for c in people if c.email], ctx,
                       cc=[c.email for c in cc if c.email])
    texts = (Notice("emergency_question", tuple(dict.fromkeys(
        c.phone for c in people if c.phone)), ctx, channel="sms"),) if sms else ()
    return (mail, *texts)


def ask_key(brief: Brief, q: Question) -> str:
    """The key of telling a question's people it waits (one per question of a run)."""
    return _key(brief, "ask", q.task_id)


def sent_to(n: int) -> str:
    """``问题已发给 1 人 / question sent to 1 person``; no one: said so."""
    if not n:
        return "问题未发给任何人 / question sent to no one"
    return f"问题已发给 {n} 人 / question sent to {n} {'person' if n == 1 else 'people'}"


def decide_ask(brief: Brief, q: Question, asked_at: datetime) -> Plan:
    """The question is waiting: its people are told by mail and SMS, with the link."""
    people = assignees(brief, q.kind)
    action = incident_note(brief, q.step, "emergency.question-asked", "ask",
                           f"问题已发出，等待回答 / question asked, waiting for an answer: "
                           f"{q.subject} — {', '.join(c.name for c in people) or '—'}",
                           f"{q.task_id}: {sent_to(len(people))}",
                           brief.run_id, q.task_id,  # the parts of ask_key
                           notices=_messages(brief, "ask", q, people, brief.run_id,
                                             asked=local_time(asked_at, brief.tz)))
    return emergency_plan(brief, brief.run_id, action)


def decide_wake(brief: Brief, q: Question, asked_at: datetime, now: datetime) -> Plan:
    """What falls due while the question waits: the latest reminder (one message however
    long the wake came late), and the escalation to the incident manager and management."""
    people = assignees(brief, q.kind)
    cadence = brief.plan.cadence
    waited = max(0, int((now - asked_at).total_seconds() // 60))
    asked = local_time(asked_at, brief.tz)
    actions: list[Action] = []
    n = reminders_due(cadence, asked_at, now)
    if n:
        actions.append(Action(
            kind=NOTIFY, ticket_id=brief.incident_id, step=q.step,
            rule="emergency.question-reminder",
            key=_key(brief, "remind", q.task_id, asked_at.isoformat(), n),
            reason=f"{q.task_id}: reminder {n} after {waited} min",
            notices=_messages(brief, "remind", q, people, brief.run_id, n=n, waited=waited,
                              asked=asked)))
    if escalation_due(cadence, asked_at, now):
        bosses = people_of(brief, ESCALATE_TO)
        actions.append(incident_note(
            brief, q.step, "emergency.question-timeout", "timeout",
            f"{waited} 分钟无人回答，已上报事件经理与管理层 / no answer after {waited} min: "
            f"incident manager and management told — {q.subject}",
            f"{q.task_id}: unanswered after {waited} min, escalated",
            brief.run_id, q.task_id,
            notices=_messages(brief, "timeout", q, bosses, brief.run_id, cc=people,
                              waited=waited, asked=asked)))
    return emergency_plan(brief, brief.run_id, *actions)


def decide_sent_back(brief: Brief, q: Question, problems: Sequence[str],
                     responder: Mapping[str, Any] | None, attempt: int) -> Plan:
    """An answer that cannot be used goes back: whoever gave it is told why (by mail; all
    the question's people when Airflow does not say who it was) and the question is open
    again."""
    people = assignees(brief, q.kind)
    login = str((responder or {}).get("id") or "")
    given = [c for c in people if login and c.airflow_user == login] or list(people)
    return emergency_plan(brief, brief.run_id, Action(
        kind=NOTIFY, ticket_id=brief.incident_id, step=q.step,
        rule="emergency.answer-sent-back",
        key=_key(brief, "sent-back", q.task_id, attempt),
        reason=f"{q.task_id}: answer {attempt} sent back: {'; '.join(problems)}",
        notices=_messages(brief, "sent_back", q, given, brief.run_id, sms=False,
                          problems=list(problems),
                          responder=str((responder or {}).get("name") or login or "—"))))


def _key(brief: Brief, kind: str, *parts: object) -> str:
    return key(brief, kind, brief.run_id, *parts)


# --------------------------------------------------------------- checking an answer
def check_answer(brief: Brief, kind: str, chosen: Sequence[str], params: Mapping[str, Any],
                 now: datetime) -> list[str]:
    """Why an answer cannot be used (bilingual, one line each); empty when it can.

    The forms require only what every answer needs; what depends on the choice is checked
    here: a recovery time when *lifted* (a time, in ``brief.tz``, not in the future, not
    before the minute the incident was opened in), a component when one changes, what the
    group is asked when it must step in, which steps failed when some did.
    """
    problems: list[str] = []
    first = chosen[0] if chosen else ""

    def text(name: str) -> str:
        return str(params.get(name) or "").strip()

    if kind == LIFTED_Q:
        typed = text("recovered_at")
        if first == LIFTED and not typed:
            problems.append("解除时须填写业务恢复时间 / lifting needs the business recovery time "
                            f"(YYYY-MM-DD HH:MM, {brief.tz})")
        if typed:
            moment = recovery_time(typed, brief.tz) if RECOVERY_FORMAT.match(typed) else None
            if moment is None:
                problems.append(f"业务恢复时间“{typed}”不是 YYYY-MM-DD HH:MM 格式的时间 / "
                                f"business recovery time '{typed}' is not a time in the form "
                                f"YYYY-MM-DD HH:MM ({brief.tz})")
            elif moment > now + CLOCK_SLACK:
                problems.append(f"业务恢复时间 {local_time(moment, brief.tz)} 晚于现在 / the "
                                f"business recovery time {local_time(moment, brief.tz)} is in "
                                "the future")
            # The form takes minutes, the desk keeps seconds: a time typed in the minute the
            # incident was opened is not before it (typed 08:45, opened 08:45:44).
            elif moment < brief.incident.created.replace(second=0, microsecond=0):
                opened = local_time(brief.incident.created, brief.tz)
                problems.append(f"业务恢复时间 {local_time(moment, brief.tz)} 早于事件单创建 "
                                f"{opened} / the business recovery time is before the "
                                f"incident was opened ({opened})")
    elif kind == SOLUTION:
        if len(text("solution")) < 4:
            problems.append("请描述方案 / describe the solution")
        if params.get("changes_it_component") and not text("component"):
            problems.append("变更 IT 组件时须写明组件 / name the component when one changes "
                            "(it goes on the emergency change request)")
        if params.get("group_support_needed") and not text("group_request"):
            problems.append("需要集团中心支持时须写明请求内容 / say what the group is asked "
                            "when it must step in")
    elif kind == STEPS and first == STEPS_PARTLY and not text("notes"):
        problems.append("部分步骤未能执行时，请在备注中写明哪些步骤及原因 / say in the notes "
                        "which steps could not be carried out, and why")
    return problems
