"""101.1-101.3: check the trigger, convene the team, take the plan route.

The task bodies of the emergency's start (``steps`` has what every step shares).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from incident_ops.airflow.emergency.ids import COVERED
from incident_ops.airflow.emergency.steps import (
    brief_of,
    carry,
    event,
    required_actions_url,
    tz_name,
)
from incident_ops.policy import emergency as em

if TYPE_CHECKING:
    from incident_ops.airflow.bootstrap import Services

log = logging.getLogger(__name__)


def validate_task(s: Services) -> dict[str, Any]:
    """Check the trigger params against the desk and the plans before anything is sent."""
    from airflow.sdk.exceptions import AirflowFailException

    from incident_ops.airflow.emergency.guard import claim_incident
    from incident_ops.desk.port import DeskError, TicketNotFound
    from incident_ops.policy.contingency import PlanUnavailable, assess_coverage

    # One emergency per incident: refused before anything is read, sent or written.
    running = claim_incident(s.context)
    params = s.params
    contacts = s.config.contacts
    book = s.config.plans
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


def notify_start_task(s: Services) -> dict[str, Any]:
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


def announce_plan_task(s: Services) -> dict[str, Any]:
    """101.2 → 101.3: the team follows the plan; the group hears which route was taken."""
    brief = brief_of(s.context)
    carry(s, brief, em.decide_route(brief, s.info.run_id, em.ROUTE_PLAN), "announce_route")
    return {"events": [event("101.3", "automation", "按预案处置 / plan route taken")]}
