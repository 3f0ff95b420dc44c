"""The tasks every fetch → decide → apply → report pipeline shares: apply and report.

A pipeline's own plan task returns ``planned(...)``: the plan as JSON plus what apply and
report need (the keys each ticket carried, update times for the watermark). It travels
through XCom, so apply runs on any worker. Apply retried after a partial success re-applies
the same plan: every write is conditional on the version the plan saw, so what was already
done comes back ``stale`` (or ``skipped``) instead of being done twice.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from incident_ops.airflow.runtime import AirflowNotifier
from incident_ops.model import Ticket
from incident_ops.policy.plan import Plan

log = logging.getLogger(__name__)


def read_watermark(variable: str) -> datetime | None:
    from airflow.sdk import Variable

    raw = Variable.get(variable, default=None)
    return datetime.fromisoformat(raw) if raw else None


def fetch_clock() -> datetime:
    """When a fetch starts (the wall clock, not the run's time: the watermark is about
    what the desk has shown us, and a replayed run still reads today's desk)."""
    return datetime.now(UTC)


def clock_skew() -> timedelta:
    return timedelta(seconds=float(os.environ.get("INCIDENT_OPS_CLOCK_SKEW_SECONDS", "60")))


def planned(plan: Plan, tickets: Iterable[Ticket], *, now: datetime,
            watermark_variable: str | None = None, watermark: datetime | None = None,
            fetch_started: datetime | None = None, bulk_size: int = 100,
            read: Iterable[Ticket] = ()) -> dict[str, Any]:
    """What a plan task hands on. ``read``: the tickets the watermark is computed over."""
    tickets = list(tickets)
    log.info("plan %s: %s; %d findings, %d waiting", plan.run_id,
             plan.by_kind() or "nothing to do", len(plan.findings), len(plan.waiting))
    for finding in plan.findings:
        log.warning("%s", finding)
    return {
        "plan": plan.to_dict(),
        "keys": {t.id: list(t.automation_keys) for t in tickets},
        "updated": {t.id: t.updated.isoformat() for t in read},
        "watermark_variable": watermark_variable,
        "watermark": watermark.isoformat() if watermark else None,
        "fetch_started": fetch_started.isoformat() if fetch_started else None,
        "now": now.isoformat(),
        "bulk_size": bulk_size,
    }


def apply_task(planned: dict[str, Any], *, dry_run: bool,
               conn_id: str = "servicedesk_default") -> list[dict[str, Any]] | None:
    if dry_run:
        log.info("dry run: %d planned actions not applied", len(planned["plan"]["actions"]))
        return None
    from incident_ops.airflow.hooks import ServiceDeskHook
    from incident_ops.apply import Applier

    plan = Plan.from_dict(planned["plan"])
    if not plan.actions:
        return []
    with ServiceDeskHook(conn_id) as hook:
        applier = Applier(hook.get_desk(), AirflowNotifier(), planned["keys"], plan.run_id,
                          bulk_size=int(planned.get("bulk_size", 100)))
        outcomes = applier.apply(plan)
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.outcome] = counts.get(o.outcome, 0) + 1
        if o.outcome in ("failed", "stale"):
            log.warning("ticket %s: %s %s: %s", o.ticket_id, o.kind, o.outcome, o.message)
    log.info("applied %d actions: %s", len(outcomes), counts or "none")
    return [o.to_dict() for o in outcomes]


def report_task(planned: dict[str, Any], applied: list[dict[str, Any]] | None, *,
                dry_run: bool) -> dict[str, Any]:
    from airflow.sdk import Variable

    from incident_ops.apply import ActionOutcome
    from incident_ops.config import reports_dir
    from incident_ops.pipelines.watermark import next_watermark
    from incident_ops.reports.plan_report import write_plan_report

    plan = Plan.from_dict(planned["plan"])
    outcomes = [ActionOutcome(**o) for o in applied] if applied is not None else None
    now = datetime.fromisoformat(planned["now"])
    paths = write_plan_report(plan, outcomes, reports_dir(), now=now, dry_run=dry_run)
    log.info("plan report: %s", paths["html"])
    result: dict[str, Any] = {"report": paths, "summary": plan.by_kind(),
                              "findings": len(plan.findings)}
    if outcomes is not None:
        result["outcomes"] = {o: sum(1 for x in outcomes if x.outcome == o)
                              for o in sorted({x.outcome for x in outcomes})}
    variable = planned.get("watermark_variable")
    if variable and planned.get("fetch_started") and not dry_run and outcomes is not None:
        previous = datetime.fromisoformat(planned["watermark"]) if planned["watermark"] else None
        updated = {k: datetime.fromisoformat(v) for k, v in planned["updated"].items()}
        mark = next_watermark(previous, datetime.fromisoformat(planned["fetch_started"]),
                              updated, outcomes, clock_skew())
        if mark != previous:
            Variable.set(variable, mark.isoformat())
            log.info("watermark %s moved to %s", variable, mark.isoformat())
        result["watermark"] = mark.isoformat()
    return result
