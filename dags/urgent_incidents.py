"""
### urgent_incidents — tell the right people about urgent incidents at once (100.5)

Seconds after the desk says a ticket was created, re-prioritised or flagged by first line
(desk events: an asset watching the desk's Redis channel), and every five minutes as the
safety net: open tickets that are urgent (or were re-prioritised to urgent) and do not
yet record a notification → the incident manager and the management concerned with the
affected system, by e-mail and SMS. The ticket records who was told and when (a comment,
and the `Urgent Notified` field), so nobody is told twice for the same ticket and priority.
When first line recorded that it cannot handle it alone (100.5.2), or the impact is major,
the message says the emergency sub-process (101) applies, with ready commands to start
`emergency_response` for the ticket.

Every run reads every urgent ticket not yet notified (one search); a run started by desk
events logs the tickets they named. The desk's keys make the two paths notify each ticket once.

Contacts: `include/config/contacts.yaml`. Connections: `servicedesk_default`,
`smtp_default`, `sms_default`, `desk_events_default` (Redis). Schedule:
`$INCIDENT_OPS_URGENT_SCHEDULE` (default every minute); with `INCIDENT_OPS_URGENT_EVENTS=on`,
desk events or the cron (then every 5 minutes by default, the safety net).
"""

from __future__ import annotations

from airflow.sdk import Param, dag

from incident_ops.airflow.dag_defaults import alerting, default_args, timezone
from incident_ops.airflow.provider.desk_events import urgent_schedule
from incident_ops.airflow.tasks.plans import plan_urgent
from incident_ops.airflow.tasks.wiring import plan_apply_report


@dag(
    schedule=urgent_schedule(timezone()),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["itil", "incident", "urgent", "100.5"],
    default_args=default_args(retry_seconds=20),
    params={"dry_run": Param(False, type=["boolean", "null"], title="演练 / Dry run",
                             description="只做决定和报告 / Decide and report only.")},
    **alerting("urgent_incidents"),
)
def urgent_incidents():
    plan_apply_report(plan_urgent)


urgent_incidents()
