"""
### incident_queue_monitor — the SLA escalation ladder (100.8)

Every 5 minutes: open tickets that changed since the last run or whose next rung fell due
are measured against `include/config/sla.yaml` (targets by priority and impact, business
hours for the priorities that use them, Asia/Shanghai). Rungs, each fired at most once per
ticket and recorded on it (`Escalation`, `Escalation Due`):

| rung | when | who is told | step |
|---|---|---|---|
| at-risk | 75% of the resolve target | the handler | 100.8.1 |
| breached | the target | the incident manager | 100.8.1 |
| convene | breach + 2 h | the system's second-line experts | 100.8.2 |
| management | breach + 4 h, or at breach for major impact | management | 100.8.3 |

A resolved ticket stops climbing; a re-prioritised one is measured against its new target.
The queue snapshot is `incident_queue_snapshot`.
"""

from __future__ import annotations

import os

from airflow.sdk import Param, dag
from airflow.timetables.trigger import CronTriggerTimetable

from incident_ops.airflow.dag_defaults import alerting, default_args, timezone
from incident_ops.airflow.tasks.plans import plan_monitor
from incident_ops.airflow.tasks.wiring import plan_apply_report


@dag(
    schedule=CronTriggerTimetable(os.environ.get("INCIDENT_OPS_MONITOR_SCHEDULE", "*/5 * * * *"),
                                  timezone=timezone()),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["itil", "incident", "sla", "escalation", "100.8"],
    default_args=default_args(retry_seconds=60),
    params={"dry_run": Param(False, type=["boolean", "null"], title="演练 / Dry run",
                             description="只做决定和报告 / Decide and report only.")},
    **alerting("incident_queue_monitor"),
)
def incident_queue_monitor():
    plan_apply_report(plan_monitor)


incident_queue_monitor()
