"""Task bodies of the ``emergency_response`` DAG (sub-process 101): read, decide, apply.

Each step reads what it needs (the run's brief from ``validate``, the people's answers from
the HITL operators' ``answer`` XCom, the incident when it matters), asks the pure policy
(``policy.emergency``) for its ``Plan`` and hands it to the one apply engine under the
emergency's lease and outbox, exactly like the scheduled pipelines: keys recorded on the
incident, messages owed until delivered, tickets created once, a plan page per step under
``reports/emergency_response/``. With ``dry_run`` nothing is applied: the plan pages show
what each step would send and create. A step whose plan did not go through fails (Airflow
retries it; the keys make the retry repeat nothing).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from incident_ops.airflow.emergency.ids import (
    ANSWER_KEY,
    COVERED,
    PLAN_FOLLOW,
    PLAN_LIFTED,
    VALIDATE,
    round_task,
    rounds_in,
)
from incident_ops.policy import emergency as em
from incident_ops.policy.plan import CREATE, Plan

log = logging.getLogger(__name__)

CLOSED_ASSET = "incident-ops://emergency/closed"
REPORT_DIR = "emergency_response"
# Tasks whose XCom carries timeline notes (``events``), besides the rounds' tasks.
NOTE_TASKS = ("notify_start", "plan.announce_route", "aftermath.announce_lifted")


class StepNotApplied(Exception):
    """A step's plan did not go through (a desk refusal, an undelivered message): retried."""


def tz_name() -> str:
    from incident_ops.config import timezone

    return timezone()


def now() -> datetime:
    return datetime.now(UTC)


def event(step: str, who: str, what: str, at: datetime | None = None) -> dict[str, Any]:
    return {"at": (at or now()).isoformat(), "step": step, "who": who, "what": what}


# ------------------------------------------------------------------ reading the run
def brief_of(context: Any) -> em.Brief:
    data = context["ti"].xcom_pull(task_ids=VALIDATE)
    if not data:
        raise RuntimeError("the validate task left no brief; was it skipped?")
    return em.Brief.from_dict(data)


def answer_of(context: Any, task_id: str, step: str, question: str) -> em.Answer | None:
    payload = context["ti"].xcom_pull(task_ids=task_id, key=ANSWER_KEY)
    if not payload:
        return None
    return em.Answer.from_xcom(step, question, payload, brief_of(context).names())


def round_answers(context: Any, k: int, n: int) -> tuple[em.Answer | None, list[em.Answer]]:
    """Round ``k`` of this run (number ``n``): the proposal and the approvals given."""
    proposed = answer_of(context, round_task(k, "propose_solution"), "101.4",
                         f"{em.Q_SOLUTION} ({n})")
    approvals = [a for a in (
        answer_of(context, round_task(k, "approve_team_lead"), "101.4",
                  f"{em.Q_APPROVE_LEAD} ({n})"),
        answer_of(context, round_task(k, "approve_leader"), "101.4",
                  f"{em.Q_APPROVE_LEADER} ({n})")) if a]
    return proposed, approvals


def collect_rounds(context: Any, brief: em.Brief) -> tuple[list[em.Round], list[em.Answer]]:
    """The rounds so far (earlier runs' first) and every human decision of this run."""
    rounds = list(brief.history)
    decisions: list[em.Answer] = []
    covered = answer_of(context, COVERED, "101.2", em.Q_COVERED)
    decisions += [covered] if covered else []
    steps = answer_of(context, PLAN_FOLLOW, "101.3", em.Q_STEPS)
    if steps is not None:
        lifted = answer_of(context, PLAN_LIFTED, "101.5", em.Q_LIFTED)
        decisions += [a for a in (steps, lifted) if a]
        rounds.append(em.Round(0, em.ROUTE_PLAN, None, None, (), steps, None, False, lifted))
    for k in range(1, rounds_in(context["dag"].task_ids) + 1):
        n = brief.round_offset + k
        proposed, approvals = round_answers(context, k, n)
        if proposed is None:
            break
        lifted = answer_of(context, round_task(k, "lifted"), "101.5", f"{em.Q_LIFTED} ({n})")
        done = context["ti"].xcom_pull(task_ids=round_task(k, "carry_out")) or {}
        decisions += [proposed, *approvals, *([lifted] if lifted else [])]
        rounds.append(em.Round(n, em.ROUTE_VENDORS, em.Solution.from_params(proposed.params),
                               proposed, tuple(approvals), None, done.get("change_request"),
                               bool(done.get("group_asked")), lifted))
    return rounds, decisions


def history_markdown(rounds: Sequence[em.Round]) -> str:
    if not rounds:
        return "_首轮 / first round_"
    lines = []
    for r in rounds:
        if r.route == em.ROUTE_PLAN:
            lines.append(f"- **预案处置 / plan route** — {em.OUTCOME_LABELS[r.outcome]}")
        else:
            sol = r.solution.text if r.solution else "—"
            lines.append(f"- **第 {r.number} 轮 / round {r.number}** — {sol} → "
                         f"**{em.OUTCOME_LABELS[r.outcome]}**")
    return "\n".join(lines)


# ----------------------------------------------------------------- applying a step
def carry(s: Any, brief: em.Brief, plan: Plan, step: str, *, strict: bool = True) -> Any:
    """Apply ``plan`` through the engine (not in a dry run), write the step's plan page;
    raise when any of it did not go through, so Airflow retries the step (``strict=False``:
    only when the desk refused; messages still owed are left to the outbox, for the
    emergency's questions, which must not fail because a mail server is down)."""
    from incident_ops.airflow.tasks.pipeline import summary_lines
    from incident_ops.config import reports_dir
    from incident_ops.reports.plan_report import write_plan_report

    applied = None if brief.dry_run else s.applier(brief.scope).apply(plan)
    paths = write_plan_report(
        plan, applied.outcomes if applied else None, reports_dir(), now=s.info.now,
        dry_run=brief.dry_run, replayed=applied.replayed if applied else (),
        undelivered=applied.undelivered if applied else (), stem_suffix=f".{step}",
        extra={"step": step, "emergency_id": brief.emergency_id})
    log.info("%s: plan page %s", step, paths["html"])
    if applied is None:
        for action in plan.actions:
            log.info("dry run, would: %s %s (%s)", action.kind, action.reason,
                     ", ".join(f"{n.channel} {n.template} to {len(n.to)}" for n in action.notices)
                     or "no message")
        return None
    for line in summary_lines(applied.outcomes, applied.replayed,
                              undelivered=applied.undelivered, findings=len(plan.findings)):
        log.info("%s", line)
    missing = [o for o in [*applied.replayed, *applied.outcomes]
               if o.outcome not in ("done", "skipped", "dropped")]
    if not missing:
        return applied
    problem = "; ".join(f"{o.kind} {o.rule} on #{o.ticket_id}: {o.outcome}: {o.message}"
                        for o in missing) + f" (plan page {paths['html']})"
    ti = s.context.get("ti")
    last_try = ti is not None and getattr(ti, "try_number", 1) > getattr(ti, "max_tries", 0)
    if (last_try or not strict) and all(o.outcome == "undelivered" for o in missing):
        # The desk is done; only messages are owed. The emergency must not stop for a mail
        # server: they stay in the outbox, every later step tries them again, and the last
        # step fails the run if they never went out.
        log.warning("%s: messages still owed%s, the emergency goes on: %s", step,
                    " after every try" if last_try else "", problem)
        return applied
    raise StepNotApplied(problem)


def settle(s: Any, brief: em.Brief) -> None:
    """The end of an emergency run: whatever its steps still owe goes out now, or the run
    fails naming it (Airflow retries this; the outbox keeps it)."""
    if brief.dry_run:
        return
    applied = s.applier(brief.scope).apply(Plan(pipeline=em.PIPELINE, run_id=s.info.run_id))
    owed = [o for o in applied.replayed if o.outcome not in ("done", "dropped")]
    if owed:
        raise StepNotApplied("still owed at the end of the emergency run: " + "; ".join(
            f"{o.kind} {o.rule} on #{o.ticket_id}: {o.message}" for o in owed))


def created(s: Any, applied: Any, plan: Plan) -> str | None:
    """The id of the ticket the plan's create made (now or in an earlier attempt)."""
    for action in plan.actions:
        if action.kind != CREATE or action.create is None:
            continue
        if applied is not None:
            for o in applied.outcomes:
                if o.key == action.key and o.created_id:
                    return str(o.created_id)
            return s.desk.find_by_key(action.create.idempotency_key, action.create.queue)
    return None


def required_actions_url(run_id: str) -> str:
    """Where people answer this run's questions: the run's page in the Airflow UI
    (``$INCIDENT_OPS_AIRFLOW_URL``, the address people open)."""
    from urllib.parse import quote

    from incident_ops.airflow.names import airflow_url

    return f"{airflow_url()}/dags/emergency_response/runs/{quote(run_id, safe='')}"


# ------------------------------------------------------------------------ the tasks
def validate_task(s: Any) -> dict[str, Any]:
    """Check the trigger params against the desk and the plans before anything is sent."""
    from airflow.sdk.exceptions import AirflowFailException

    from incident_ops.airflow.emergency.guard import claim_incident
    from incident_ops.config import load_plans
    from incident_ops.desk.port import DeskError, TicketNotFound
    from incident_ops.policy.contingency import PlanUnavailable, assess_coverage

    # One emergency per incident: refused before anything is read, sent or written.
    running = claim_incident(s.context)
    params = s.params
    contacts = s.config.contacts
    book = load_plans(contacts)
    for problem in book.problems:  # other systems' broken plans are reported, not fatal
        log.warning("contingency plan problem: %s", problem)
    try:
        try:
            plan = book.get(str(params["system"]))
        except PlanUnavailable as exc:
            raise em.EmergencyParamError("system", str(exc)) from exc
        try:
            ticket = s.desk.get(str(params["ticket_id"]))
        except TicketNotFound as exc:
            raise em.EmergencyParamError(
                "ticket_id", f"no ticket {params['ticket_id']} in the desk") from exc
        em.check_ticket(ticket)
        reporter = str(params["reporter"])
        desk_email = None
        if "@" not in reporter and not contacts.people.get(reporter) \
                and not contacts.by_desk_user(reporter):
            try:
                desk_email = s.desk.user_email(reporter)
            except DeskError:
                desk_email = None
        reporter_email = em.reporter_address(reporter, contacts, desk_email)
    except em.EmergencyParamError as exc:
        # A wrong param does not get better with retries: fail the run at once, name the field.
        raise AirflowFailException(f"Invalid {exc}") from exc
    from incident_ops.airflow.names import airflow_url

    continuation = params.get("continuation") or None
    coverage = assess_coverage(plan, str(params["symptoms"]), str(params["impact"]))
    from incident_ops.config import system_labels

    warnings = em.input_warnings(ticket, str(params["system"]), str(params["impact"]),
                                 system_labels())
    reason = str(params.get("start_anyway_reason") or "").strip() or None
    if running:
        warnings.append(
            f"另行启动：该事件单的应急 {', '.join(c.run_id for c in running)} 仍在进行 / started "
            f"anyway beside the running emergency {', '.join(c.run_id for c in running)}: "
            f"{reason}")
    for warning in warnings:
        log.warning("%s", warning)
    brief = em.make_brief(
        ticket, params, plan, coverage, contacts, reporter_email=reporter_email,
        emergency_id=str(continuation["emergency_id"]) if continuation else s.info.run_id,
        run_id=s.info.run_id, now=s.info.now, continuation=continuation,
        started_by=getattr(s.context["dag_run"], "triggering_user_name", None) or "—",
        dry_run=s.dry_run, actions_url=required_actions_url(s.info.run_id), tz=tz_name(),
        warnings=warnings, airflow_url=airflow_url(),
        separate_from=[c.run_id for c in running], separate_reason=reason)
    log.info("emergency %s on #%s (%s, %s): plan %s, suggestion: %s%s", brief.emergency_id,
             ticket.id, brief.system, brief.impact, plan.file, coverage.reason,
             " — DRY RUN: nothing will be sent or created" if brief.dry_run else "")
    for role, people in brief.people.items():
        logins = [p.airflow_user for p in people if p.airflow_user]
        log.info("role %s: %s (Airflow logins: %s)", role,
                 ", ".join(p.name for p in people) or "nobody", ", ".join(logins) or "none")
    return brief.to_dict()


def notify_start_task(s: Any) -> dict[str, Any]:
    """101.1: convene the team, inform the provincial centre leaders and the group."""
    brief = brief_of(s.context)
    plan = em.decide_start(brief, s.info.run_id)
    carry(s, brief, plan, "notify_start")
    to = len(plan.actions[0].notices[0].to) if plan.actions[0].notices else 0
    return {"events": [event("101.1", "automation",
                             f"首报已发送 / initial report sent to {to} addresses, SMS to "
                             f"{len(brief.to.team_phones)} team members")]}


def start_route_task(context: Any, first_round: str) -> str:
    """A continuation run goes straight back to 101.4; a new emergency asks 101.2 first."""
    return first_round if brief_of(context).round_offset else COVERED


def announce_plan_task(s: Any) -> dict[str, Any]:
    """101.2 → 101.3: the team follows the plan; the group hears which route was taken."""
    brief = brief_of(s.context)
    carry(s, brief, em.decide_route(brief, s.info.run_id, em.ROUTE_PLAN), "announce_route")
    return {"events": [event("101.3", "automation", "按预案处置 / plan route taken")]}


def engage_vendors_task(s: Any, k: int) -> dict[str, Any]:
    """101.4: the team organises the vendors to analyse it and build a solution (round k)."""
    brief = brief_of(s.context)
    n = brief.round_offset + k
    rounds, _ = collect_rounds(s.context, brief)
    carry(s, brief, em.decide_route(brief, s.info.run_id, em.ROUTE_VENDORS, n, rounds),
          f"round_{k}.engage_vendors")
    return {"round": n, "history_md": history_markdown(rounds),
            "events": [event("101.4", "automation", f"第 {n} 轮，已通知厂商 / round {n}: "
                                                    "vendors notified")]}


def carry_out_task(s: Any, k: int) -> dict[str, Any]:
    """101.4 after approval: tell the group, raise the emergency change, ask the group centre."""
    brief = brief_of(s.context)
    n = brief.round_offset + k
    proposed, approvals = round_answers(s.context, k, n)
    if proposed is None:
        raise RuntimeError(f"round {k}: no proposed solution to carry out")
    solution = em.Solution.from_params(proposed.params)
    plan = em.decide_carry_out(brief, s.info.run_id, n, solution, approvals)
    applied = carry(s, brief, plan, f"round_{k}.carry_out")
    change_id = created(s, applied, plan)
    events = []
    if change_id:
        events.append(event("101.4", "automation", f"紧急变更 / emergency change #{change_id} "
                                                   "raised"))
    if solution.group_support_needed:
        events.append(event("101.4", "automation", "已请求集团中心支持 / group centre asked"))
    return {"round": n, "change_request": change_id,
            "group_asked": solution.group_support_needed, "events": events}


def approval_outcome_task(context: Any, k: int, lifted_task: str, next_task: str) -> str:
    """Approved and carried out → ask whether it is lifted; rejected → the next round."""
    done = context["ti"].xcom_pull(task_ids=round_task(k, "carry_out"))
    _, approvals = round_answers(context, k, k)
    rejected = [a for a in approvals if a.first == em.REJECT]
    if rejected or not done:
        log.info("round %d: solution rejected by %s; a new round", k,
                 ", ".join(a.by for a in rejected) or "?")
        return next_task
    return lifted_task


def escalate_task(s: Any) -> dict[str, Any]:
    """Every round of this run done and not lifted: tell management, continue in a new run."""
    brief = brief_of(s.context)
    rounds, _ = collect_rounds(s.context, brief)
    done = max((r.number for r in rounds), default=0)
    carry(s, brief, em.decide_escalation(brief, s.info.run_id, rounds), "escalate")
    continuation = {"emergency_id": brief.emergency_id, "rounds_done": done,
                    "started_at": brief.started_at.isoformat(),
                    "history": [r.to_dict() for r in rounds]}
    # Deterministic, so a retried trigger finds the run it already started.
    base = re.sub(r"[^A-Za-z0-9_.~:+-]", "_", brief.emergency_id)[:180]
    return {"conf": {**brief.params(), "dry_run": brief.dry_run,
                     "continuation": continuation},
            "run_id": f"{base}.from-round-{done + 1}"}


# ------------------------------------------------------------------------ 101.5 / 101.6
def _notes(context: Any) -> list[Any]:
    from incident_ops.policy.emergency_records import Event

    ids = list(NOTE_TASKS)
    for k in range(1, rounds_in(context["dag"].task_ids) + 1):
        ids += [round_task(k, "engage_vendors"), round_task(k, "carry_out")]
    notes = []
    for task_id in ids:
        if task_id not in context["dag"].task_ids:
            continue
        value = context["ti"].xcom_pull(task_ids=task_id)
        for e in (value or {}).get("events", []) if isinstance(value, dict) else []:
            notes.append(Event(datetime.fromisoformat(e["at"]), e["step"], e["who"], e["what"]))
    return notes


def announce_lifted_task(s: Any) -> dict[str, Any]:
    """101.5 → 101.6: the emergency is lifted; the group hears it at once; the recovery time
    typed when lifting goes onto the incident."""
    brief = brief_of(s.context)
    rounds, _ = collect_rounds(s.context, brief)
    lifted = em.lifted_answer(rounds)
    if lifted is None:
        raise RuntimeError("aftermath reached without a 'lifted' answer")
    incident = s.desk.get(brief.incident_id)
    carry(s, brief, em.decide_lifted(brief, s.info.run_id, lifted, incident, brief.tz),
          "announce_lifted")
    return {"lifted": lifted.to_dict(),
            "events": [event("101.5", "automation", "集团公司已获解除通报 / group HQ told it is "
                                                     "lifted")]}


def report_task(s: Any) -> dict[str, Any]:
    """101.6: the report, written under reports/ and mailed to reporter, leaders and group."""
    from incident_ops.config import reports_dir
    from incident_ops.reports.emergency_report import report_context, write_report

    brief = brief_of(s.context)
    rounds, decisions = collect_rounds(s.context, brief)
    ctx = report_context(brief, rounds, decisions, _notes(s.context), generated_at=now(),
                         tz=brief.tz)
    paths = write_report(ctx, reports_dir() / REPORT_DIR / f"{brief.started_at:%Y-%m-%d}")
    paths.update(report_pdf(paths))
    log.info("aftermath report: %s (print: %s, PDF: %s)", paths["html"], paths["print"],
             paths.get("pdf") or "none")
    mailed = {k: v for k, v in ctx.items() if k != "plan"}
    carry(s, brief, em.decide_report(brief, s.info.run_id, mailed, paths), "report")
    return {"paths": paths, "number": ctx["number"], "major": brief.major,
            "rounds": [r.to_dict() for r in rounds]}


def report_pdf(paths: dict[str, str]) -> dict[str, str]:
    """The report as PDF, printed from its printable page; without a browser (or when it
    fails) the report goes out as HTML only, and the log says why."""
    from pathlib import Path

    from incident_ops.reports.pdf import PdfUnavailable, html_to_pdf

    printable = Path(paths["print"])
    target = printable.with_name(printable.name.removesuffix("-print.html") + ".pdf")
    try:
        return {"pdf": str(html_to_pdf(printable, target))}
    except PdfUnavailable as exc:
        log.warning("no PDF of the report: %s", exc)
        return {}


def major_report_task(s: Any, report: dict[str, Any]) -> str | None:
    """101.6: a major emergency's 《重大事件报告》 goes into the desk, report attached."""
    brief = brief_of(s.context)
    if not brief.major:
        log.info("impact %s: no Major Incident Report needed", brief.impact)
        return None
    rounds = [em.Round.from_dict(r) for r in report["rounds"]]
    plan = em.decide_major_report(brief, s.info.run_id, rounds, report, report["paths"])
    return created(s, carry(s, brief, plan, "major_incident_report"), plan)


def problem_task(s: Any, report: dict[str, Any]) -> str | None:
    """101.6: a problem ticket with the handling details, to the problem manager."""
    brief = brief_of(s.context)
    rounds = [em.Round.from_dict(r) for r in report["rounds"]]
    plan = em.decide_problem(brief, s.info.run_id, rounds)
    return created(s, carry(s, brief, plan, "problem_ticket"), plan)


def closed_task(context: Any, report: dict[str, Any], problem_id: str | None,
                major_report_id: str | None) -> dict[str, Any]:
    """Settle what the run still owes, then announce the closed emergency to whoever
    listens (an Airflow asset event)."""
    from airflow.sdk import Asset

    from incident_ops.airflow.bootstrap import services

    brief = brief_of(context)
    with services(context) as s:
        settle(s, brief)
    extra = {"incident_id": brief.incident_id, "emergency_id": brief.emergency_id,
             "system": brief.system, "impact": brief.impact, "problem_id": problem_id,
             "major_report_id": major_report_id, "report": report["paths"]["html"],
             "rounds": len(report["rounds"]), "dry_run": brief.dry_run}
    context["outlet_events"][Asset(CLOSED_ASSET)].extra = extra
    return extra
