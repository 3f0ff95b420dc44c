"""What the emergency's questions do besides waiting (``emergency.operators``): tell their
people, chase them on the plan's cadence, check an answer and send it back.

Every message goes through the apply engine under the emergency's scope, exactly like the
steps' (``emergency.steps.carry``): keyed on the incident, owed in the outbox until
delivered. A question does not fail because a mail server is down: what is owed stays owed
and the next step (or the next reminder) of this emergency delivers it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from incident_ops.airflow.emergency.steps import brief_of, carry
from incident_ops.policy import questions as qs
from incident_ops.policy.plan import Plan

log = logging.getLogger(__name__)
DAG_ID = "emergency_response"
# A wake comes a little after the moment it was set for (the scheduler's sweep interval);
# waking a second late is harmless, waking early would find nothing due and park again.
WAKE_MARGIN = timedelta(seconds=1)


def _now() -> datetime:
    return datetime.now(UTC)


def question_link(airflow_url: str | None, run_id: str, task_id: str) -> str | None:
    """The page where a question is answered: its task's "Required actions" in the UI."""
    from urllib.parse import quote

    if not airflow_url:
        return None
    return (f"{airflow_url.rstrip('/')}/dags/{DAG_ID}/runs/{quote(run_id, safe='')}/tasks/"
            f"{quote(task_id, safe='')}/required_actions")


def question_of(context: Any, spec: dict[str, Any]) -> qs.Question:
    """The question a prepare function described, with its link, for this task."""
    brief = brief_of(context)
    task_id = context["task"].task_id
    return qs.Question(task_id=task_id, kind=spec["kind"], step=spec["step"],
                       subject=spec["title"],
                       link=question_link(brief.airflow_url, brief.run_id, task_id))


def question_from(data: dict[str, Any]) -> qs.Question:
    return qs.Question(**data)


def wake_in(context: Any, asked_at: datetime, now: datetime) -> timedelta | None:
    """How long the question may wait before something falls due (None: nothing will)."""
    brief = brief_of(context)
    due = qs.next_wake(brief.plan.cadence, asked_at, now)
    return None if due is None else max(due - now, timedelta(0)) + WAKE_MARGIN


def _apply(context: Any, plan: Plan, step: str) -> None:
    from incident_ops.airflow.bootstrap import services

    if not plan.actions:
        return
    brief = brief_of(context)
    with services(context) as s:
        carry(s, brief, plan, step, strict=False)


def already_posted(context: Any, question: qs.Question) -> bool:
    """Whether an earlier try of this task got as far as telling the question's people (and
    so had posted it): the desk holds the key of that notice."""
    from incident_ops.airflow.bootstrap import services

    brief = brief_of(context)
    if brief.dry_run:
        return False
    with services(context) as s:
        return qs.ask_key(brief, question) in s.desk.get(brief.incident_id).automation_keys


def question_asked(context: Any, question: qs.Question, asked_at: datetime) -> None:
    """The question is posted: tell the people who answer it."""
    brief = brief_of(context)
    _apply(context, qs.decide_ask(brief, question, asked_at), f"{question.task_id}.ask")


def question_wake(context: Any, question: qs.Question, asked_at: datetime) -> timedelta | None:
    """Woken while waiting: send what fell due (a reminder, the escalation); how long to
    wait for the next."""
    brief = brief_of(context)
    now = _now()
    plan = qs.decide_wake(brief, question, asked_at, now)
    for action in plan.actions:
        log.info("%s unanswered since %s: %s", question.task_id, asked_at.isoformat(),
                 action.reason)
    _apply(context, plan, f"{question.task_id}.wait")
    return wake_in(context, asked_at, now)


def answer_problems(context: Any, kind: str, chosen: list[str], params: dict[str, Any]
                    ) -> list[str]:
    brief = brief_of(context)
    return qs.check_answer(brief, kind, chosen, params, _now())


def send_back(context: Any, question: qs.Question, problems: list[str],
              responder: dict[str, Any] | None, attempt: int) -> None:
    brief = brief_of(context)
    log.warning("%s: answer by %s sent back: %s", question.task_id,
                (responder or {}).get("id", "?"), "; ".join(problems))
    _apply(context, qs.decide_sent_back(brief, question, problems, responder, attempt),
           f"{question.task_id}.sent-back")

