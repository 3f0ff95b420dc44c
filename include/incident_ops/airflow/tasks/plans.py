"""The plan tasks of the scheduled pipelines: fetch what changed, decide (pure policy).

incident_closure (100.6-100.7), urgent_incidents (100.5), incident_queue_monitor (100.8).
Each takes the run's ``Services`` (``bootstrap``) and returns ``pipeline.planned(...)``.
Importing this module is cheap (DAG files import it when they are parsed): everything
heavy is imported inside the functions.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from incident_ops.airflow.names import airflow_url
from incident_ops.airflow.tasks.pipeline import fetch_clock, planned

if TYPE_CHECKING:
    from incident_ops.airflow.bootstrap import Services

log = logging.getLogger(__name__)

CLOSURE = "incident_closure"
URGENT = "urgent_incidents"
MONITOR = "incident_queue_monitor"


def _incremental(s: Services, pipeline: str) -> tuple[Any, dict[str, Any]]:
    """Where this run reads from, and what report needs to move the watermark after."""
    from incident_ops.airflow.state import read_watermark
    from incident_ops.engine.watermark import read_since

    stored = read_watermark(pipeline)
    started = fetch_clock()
    desk_mark = s.desk.history_mark()
    since = read_since(stored, desk_mark)
    return since, {"fetch_started": started.isoformat(), "desk_mark": desk_mark,
                   "since": since.isoformat() if since else None}


def plan_closure(s: Services) -> dict[str, Any]:
    from incident_ops.pipelines.resolved import fetch_closure_batch
    from incident_ops.policy.closure import decide_closure

    policy = s.config.closure
    since, mark = _incremental(s, CLOSURE)
    batch = fetch_closure_batch(s.desk, since, parallel=policy.read_parallelism)
    # The closure judges the desk as it reads it now, so it decides at the read, never
    # before: a scheduled run that starts late (its data interval ended minutes ago) would
    # otherwise find a completion time typed since then "in the future" and bounce a
    # complete record (100.6.8), and date its confirmation requests in the past.
    now = max(s.info.now, fetch_clock())
    plan = decide_closure(batch.resolved, batch.related, policy, s.config.vocabulary,
                          s.config.contacts, now, s.info.run_id)
    return planned(plan, batch.tickets.values(), now=now, read=batch.read_times(),
                   watermark=mark, bulk_size=policy.bulk_size)


def plan_urgent(s: Services) -> dict[str, Any]:
    from incident_ops.airflow.provider.desk_events import named_tickets
    from incident_ops.desk.events import MAX_NAMED
    from incident_ops.pipelines.open_queue import fetch_unnotified_urgent
    from incident_ops.policy.urgent import decide_urgent

    # A run desk events started reads the whole urgent queue too, not only the tickets they
    # name: Airflow folds the events that arrive while a run of this DAG waits in the queue
    # into that run without listing them (issue 28: a flood of 12 made 3 runs that named 3
    # tickets), and this run's read, made after they arrived, is what finds their tickets.
    # It is one search either way (open, urgent, not yet notified).
    named = named_tickets(s.context)
    tickets = fetch_unnotified_urgent(s.desk)
    if named is not None:
        found = {t.id for t in tickets}
        log.info("desk events name %d ticket(s): %s; %d of them still to notify, %d urgent "
                 "ticket(s) to notify in all", len(named), ", ".join(named[:MAX_NAMED]),
                 sum(1 for t in named if t in found), len(tickets))
    plan = decide_urgent(tickets, s.config.vocabulary, s.config.contacts, s.info.now,
                         s.info.run_id, airflow_url())
    return planned(plan, tickets, now=s.info.now)


def plan_monitor(s: Services) -> dict[str, Any]:
    from incident_ops.pipelines.open_queue import fetch_monitor_batch
    from incident_ops.policy.escalation import decide_escalation

    since, mark = _incremental(s, MONITOR)
    tickets = fetch_monitor_batch(s.desk, since, s.info.now)
    plan = decide_escalation(tickets, s.config.sla, s.config.vocabulary, s.config.contacts,
                             s.info.now, s.info.run_id)
    for warning in plan.warnings:  # also on the run's plan report
        log.warning("SLA calendar: %s", warning)
    return planned(plan, tickets, now=s.info.now, read={t.id: t.updated for t in tickets},
                   watermark=mark)
