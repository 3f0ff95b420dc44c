"""
### incident_queue_snapshot — the incident manager's view of the queue (100.8.1)

At the start of each shift (`$INCIDENT_OPS_SNAPSHOT_SCHEDULE`, default 00:00, 08:00 and
16:00 Asia/Shanghai): every open ticket by priority, system, tier and age, with the breached
and at-risk lists, as a page under `reports/queue_snapshot/` and a mail to the roles in
`sla.yaml` → `snapshot.to`. A re-run rewrites the page and does not mail again unless
`resend` is set. A snapshot not done within `$INCIDENT_OPS_SNAPSHOT_DEADLINE_MINUTES` (30)
of its scheduled time reaches on-call (a deadline alert).
"""

from __future__ import annotations

import os

from airflow.sdk import Param, dag, get_current_context, task
from airflow.timetables.trigger import CronTriggerTimetable

from incident_ops.airflow.dag_defaults import DESK_POOL, alerting, default_args, timezone


@dag(
    schedule=CronTriggerTimetable(os.environ.get("INCIDENT_OPS_SNAPSHOT_SCHEDULE",
                                                 "0 0,8,16 * * *"),
                                  timezone=timezone()),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["itil", "incident", "sla", "report", "100.8"],
    default_args=default_args(retry_seconds=120),
    params={"resend": Param(False, type=["boolean", "null"], title="重新发送 / Send again",
                            description="重跑时再次发送邮件 / Mail again on a re-run.")},
    **alerting("incident_queue_snapshot"),
)
def incident_queue_snapshot():
    @task(pool=DESK_POOL)
    def snapshot() -> dict:
        from incident_ops.airflow.bootstrap import services
        from incident_ops.airflow.tasks.snapshot import snapshot_task

        with services(get_current_context()) as s:
            return snapshot_task(s)

    snapshot()


incident_queue_snapshot()
