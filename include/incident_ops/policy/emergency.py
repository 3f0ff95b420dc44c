"""The emergency sub-process 101 as pure decisions: the trigger's checks, the brief of a run,
and each step's ``Plan`` of side effects. The brief, the answers, the rounds and the options
of the questions live in ``emergency_brief`` (shared with ``emergency_records`` and
``questions``) and are reached through this module too.

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
from dataclasses import asdict, replace
from datetime import datetime
from typing import Any

from incident_ops.model import OPEN_STATUSES, Ticket
from incident_ops.policy.contingency import IMPACT_LABELS, ContingencyPlan, Coverage
from incident_ops.policy.emergency_brief import (
    APPROVE,
    COVERED_PLAN,
    COVERED_VENDORS,
    HQ_APPROVED,
    HQ_LIFTED,
    HQ_ROUTE,
    LIFTED,
    NOT_LIFTED,
    OUTCOME_LABELS,
    PIPELINE,
    Q_APPROVE_LEAD,
    Q_APPROVE_LEADER,
    Q_COVERED,
    Q_LIFTED,
    Q_SOLUTION,
    Q_STEPS,
    REJECT,
    ROUTE_PLAN,
    ROUTE_VENDORS,
    STEPS_DONE,
    STEPS_PARTLY,
    SUBMIT,
    Answer,
    Brief,
    Recipients,
    Round,
    Solution,
    emergency_plan,
    incident_note,
    key,
    lifted_answer,
    local_time,
    mail_context,
    mail_notice,
    recovery_time,
    unique_addresses,
)
from incident_ops.policy.emergency_records import (
    change_request_draft,
    major_report_draft,
    problem_draft,
)
from incident_ops.policy.plan import CREATE, RECORD, Action, Notice, Plan
from incident_ops.policy.questions import people_by_role
from incident_ops.reference import Contacts

# What callers reach through this module (``from incident_ops.policy import emergency``):
# the decisions here, and the brief, answers, rounds and options of ``emergency_brief``.
__all__ = [
    "APPROVE", "COVERED_PLAN", "COVERED_VENDORS", "HQ_APPROVED", "HQ_LIFTED", "HQ_ROUTE",
    "LIFTED", "MIME", "NOT_LIFTED", "OUTCOME_LABELS", "PIPELINE",
    "Q_APPROVE_LEAD", "Q_APPROVE_LEADER", "Q_COVERED", "Q_LIFTED", "Q_SOLUTION", "Q_STEPS",
    "REJECT", "ROUTE_PLAN", "ROUTE_VENDORS", "STEPS_DONE", "STEPS_PARTLY", "SUBMIT",
    "Answer", "Brief", "EmergencyParamError", "Recipients", "Round", "Solution",
    "check_ticket", "decide_carry_out", "decide_escalation", "decide_lifted",
    "decide_major_report", "decide_problem", "decide_report", "decide_route", "decide_start",
    "emails", "input_warnings", "key", "keypoint", "lifted_answer", "local_time",
    "mail_context", "make_brief", "phones", "recovery_time", "report_files",
    "reporter_address", "suggested_route",
]

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


def suggested_route(coverage: Coverage, continuation: bool) -> str:
    """101.2's preselected answer: the plan when its start conditions are met."""
    return COVERED_PLAN if coverage.covered and not continuation else COVERED_VENDORS


def make_brief(ticket: Ticket, params: Mapping[str, Any], plan: ContingencyPlan,
               coverage: Coverage, contacts: Contacts, *, reporter_email: str,
               emergency_id: str, run_id: str, now: datetime, started_by: str = "—",
               continuation: Mapping[str, Any] | None = None, dry_run: bool = False,
               actions_url: str | None = None, tz: str = "Asia/Shanghai",
               warnings: Sequence[str] = (), airflow_url: str | None = None,
               separate_from: Sequence[str] = (), separate_reason: str | None = None) -> Brief:
    """The brief of a run, from its checked params (a continuation carries the history)."""
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


def keypoint(brief: Brief, run_id: str, step: str, point: str, what: str, *parts: object,
             **extra: Any) -> Action:
    """Tell the group headquarters of a key point, once (101 principles)."""
    email = mail_notice("emergency_keypoint", brief.to.group_hq,
                        mail_context(brief, run_id, point=point, what=what, **extra),
                        cc=brief.to.leaders)
    return incident_note(brief, step, f"emergency.hq-{point}", f"hq-{point}",
                         f"集团公司已通报 / group HQ informed: {what}", f"group HQ told: {point}",
                         *parts, notices=(email,))


def decide_start(brief: Brief, run_id: str) -> Plan:
    """101.1: convene the team, inform the provincial centre leaders and the group."""
    to = unique_addresses(brief.to.team, brief.to.leaders, brief.to.group_hq, brief.to.inform)
    ctx = mail_context(brief, run_id, coverage=asdict(brief.coverage),
                       continuation=bool(brief.round_offset))
    notices = (mail_notice("emergency_start", to, ctx),
               Notice("emergency_start", brief.to.team_phones, ctx, channel="sms"))
    start = incident_note(
        brief, "101.1", "emergency.start", "hq-start",
        f"应急启动，已通知应急小组、省中心领导与集团公司 / emergency started; team, provincial "
        f"leaders and the group informed ({len(to)} addresses, {len(brief.to.team_phones)} SMS)",
        f"initial report to {len(to)} addresses, SMS to {len(brief.to.team_phones)}",
        notices=notices)
    if not brief.separate_from:
        return emergency_plan(brief, run_id, start)
    # Before the start: the desk shows why a second emergency of the incident began.
    return emergency_plan(brief, run_id, incident_note(
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
        return emergency_plan(brief, run_id, keypoint(
            brief, run_id, "101.3", HQ_ROUTE, "按预案处置 / the contingency plan is followed "
            "(101.3)", ROUTE_PLAN))
    ctx = mail_context(brief, run_id, round=n, rounds=[r.to_dict() for r in rounds])
    vendors = mail_notice("emergency_vendors", brief.to.vendors or brief.to.team, ctx,
                          cc=brief.to.team)
    return emergency_plan(
        brief, run_id,
        keypoint(brief, run_id, "101.4", HQ_ROUTE, "组织厂商分析处理 / vendors engaged (101.4)",
                 ROUTE_VENDORS),
        incident_note(brief, "101.4", "emergency.vendors", "vendors",
                      f"第 {n} 轮：已组织厂商分析 / round {n}: vendors engaged "
                      f"({', '.join(brief.to.vendors) or 'team only'})",
                      f"round {n}: vendors engaged", n, notices=(vendors,)))


def decide_carry_out(brief: Brief, run_id: str, n: int, solution: Solution,
                     approvals: Sequence[Answer]) -> Plan:
    """101.4 after approval: tell the group, raise the emergency change, ask the group centre."""
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
        email = mail_notice("emergency_group_support", brief.to.group_support,
                            mail_context(brief, run_id, round=n, solution=solution.to_dict()),
                            cc=brief.to.leaders)
        actions.append(incident_note(
            brief, "101.4", "emergency.group-support", "group-support",
            f"已请求集团中心支持 / group centre asked to step in: "
            f"{solution.group_request or solution.text}",
            f"round {n}: group centre asked", n, notices=(email,)))
    return emergency_plan(brief, run_id, *actions)


def decide_escalation(brief: Brief, run_id: str, rounds: Sequence[Round]) -> Plan:
    """Every round of this run done and not lifted: tell management, continue in a new run."""
    done = max((r.number for r in rounds), default=0)
    email = mail_notice(
        "emergency_escalation", unique_addresses(brief.to.leaders, brief.to.group_hq),
        mail_context(brief, run_id, rounds=[r.to_dict() for r in rounds], done=done),
        cc=brief.to.team)
    return emergency_plan(brief, run_id, incident_note(
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
    record = incident_note(brief, "101.5", "emergency.recovery-time", "recovery-time", comment,
                           "business recovery time onto the incident", fields=fields)
    if not fields:
        record = replace(record, kind=RECORD)
    return emergency_plan(brief, run_id, keypoint(brief, run_id, "101.5", HQ_LIFTED, what),
                          record)


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
    """The report's files to attach (their keys in the artefact store): the screen page, and
    the PDF (the formal document) or, without one, the printable page."""
    kinds = ("html", "pdf") if paths.get("pdf") else ("html", "print")
    return tuple({"key": paths[k], "name": paths[k].rsplit("/", 1)[-1], "mime": MIME[k],
                  "kind": k} for k in kinds)


def decide_report(brief: Brief, run_id: str, report: Mapping[str, Any],
                  paths: Mapping[str, str]) -> Plan:
    """101.6: the report, mailed to the reporter, the leaders and the group, files attached
    (the screen page and the PDF, or the printable page where no PDF could be made)."""
    files = report_files(paths)
    email = mail_notice("emergency_report",
                        unique_addresses((brief.to.reporter,), brief.to.leaders,
                                         brief.to.group_hq),
                        mail_context(brief, run_id, report=dict(report)), attachments=files)
    return emergency_plan(brief, run_id, incident_note(
        brief, "101.6", "emergency.report", "report-mail",
        f"善后报告已发送报告人、领导与集团公司 / aftermath report sent to the reporter, the "
        f"leaders and the group: {paths['html']}", "aftermath report mailed",
        notices=(email,)))


def decide_major_report(brief: Brief, run_id: str, rounds: Sequence[Round],
                        report: Mapping[str, Any], paths: Mapping[str, str]) -> Plan:
    """101.6: a major emergency's 《重大事件报告》 goes into the desk, report attached."""
    if not brief.major:
        return emergency_plan(brief, run_id)
    files = tuple({**f, "note": f"《重大事件报告》 {report['number']} ({f['kind']})"}
                  for f in report_files(paths))
    return emergency_plan(brief, run_id, Action(
        kind=CREATE, ticket_id=brief.incident_id, step="101.6", rule="emergency.major-report",
        key=key(brief, "major-report-noted"), reason="major impact: the Major Incident Report",
        create=major_report_draft(brief, rounds, lifted_answer(rounds)), attachments=files,
        comment="[101.6] 《重大事件报告》已提交 / Major Incident Report submitted: #{created_id}"
                f"\n(emergency_response run {brief.run_id})"))


def decide_problem(brief: Brief, run_id: str, rounds: Sequence[Round]) -> Plan:
    """101.6: a problem ticket with the handling details, to the problem manager."""
    return emergency_plan(brief, run_id, Action(
        kind=CREATE, ticket_id=brief.incident_id, step="101.6", rule="emergency.problem",
        key=key(brief, "problem-noted"), reason="the problem ticket for root-cause analysis",
        create=problem_draft(brief, rounds, lifted_answer(rounds)),
        comment=f"[101.6] 问题单 #{{created_id}} 已提交问题经理 {brief.problem_manager or ''} / "
                f"problem #{{created_id}} handed to the problem manager\n(emergency_response "
                f"run {brief.run_id})"))
