"""What every step of the ``emergency_response`` DAG (sub-process 101) shares: read, decide, apply.

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
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from incident_ops.airflow.bootstrap import Services
    from incident_ops.engine.outcomes import Applied

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
def carry(s: Services, brief: em.Brief, plan: Plan, step: str, *,
          strict: bool = True) -> Applied | None:
    """Apply ``plan`` through the engine (not in a dry run), write the step's plan page;
    raise when any of it did not go through, so Airflow retries the step (``strict=False``:
    only when the desk refused; messages still owed are left to the outbox, for the
    emergency's questions, which must not fail because a mail server is down)."""
    from incident_ops.airflow.object_store import artefact_store
    from incident_ops.airflow.tasks.pipeline import summary_lines
    from incident_ops.reports.plan_report import write_plan_report

    applied = None if brief.dry_run else s.applier(brief.scope).apply(plan)
    paths = write_plan_report(
        plan, applied.outcomes if applied else None, artefact_store(), now=s.info.now,
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


def settle(s: Services, brief: em.Brief) -> None:
    """The end of an emergency run: whatever its steps still owe goes out now, or the run
    fails naming it (Airflow retries this; the outbox keeps it)."""
    if brief.dry_run:
        return
    applied = s.applier(brief.scope).apply(Plan(pipeline=em.PIPELINE, run_id=s.info.run_id))
    owed = [o for o in applied.replayed if o.outcome not in ("done", "dropped")]
    if owed:
        raise StepNotApplied("still owed at the end of the emergency run: " + "; ".join(
            f"{o.kind} {o.rule} on #{o.ticket_id}: {o.message}" for o in owed))


def created(s: Services, applied: Any, plan: Plan) -> str | None:
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
