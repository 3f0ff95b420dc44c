"""
### incident_ops_maintenance — run history and task logs kept within the retention

Daily (`$INCIDENT_OPS_MAINTENANCE_SCHEDULE`, default 03:15 in `$INCIDENT_OPS_TIMEZONE`), two
independent tasks delete what is older than `$INCIDENT_OPS_RETENTION_DAYS` (default 30;
0 keeps everything):

| task | what it deletes |
|---|---|
| `clean_metadata_db` | Airflow's own `airflow db clean --skip-archive`: DAG runs, task instances, XComs, the audit log, jobs, … (each DAG's latest scheduled run stays); through the connection `incident_ops_metadata_db` (the metadata DB's URL: Airflow 3 gives tasks no DB access of their own) |
| `clean_task_logs` | task log files under `[logging] base_log_folder` of the worker it runs on, and the directories left empty |

Variables (watermarks, outboxes, on-call state), connections, pools and the plan pages in
the artefact store are not touched. Trigger with **dry_run = true** to see in the logs what
would go; **retention_days** overrides the setting for one run. docs/deploy.md, "Retention".
"""

from __future__ import annotations

import os

from airflow.sdk import Param, dag, get_current_context, task
from airflow.timetables.trigger import CronTriggerTimetable

from incident_ops.airflow.dag_defaults import alerting, default_args, timezone


@dag(
    schedule=CronTriggerTimetable(os.environ.get("INCIDENT_OPS_MAINTENANCE_SCHEDULE",
                                                 "15 3 * * *"),
                                  timezone=timezone()),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["maintenance", "retention"],
    default_args=default_args(retry_seconds=300),
    params={
        "dry_run": Param(False, type=["boolean", "null"], title="试运行 / Dry run",
                         description="只记录将删除的内容，不删除 / Only log what would be "
                                     "deleted; delete nothing."),
        "retention_days": Param(None, type=["null", "integer"], minimum=1,
                                title="保留天数 / Retention (days)",
                                description="本次运行保留的天数；留空：INCIDENT_OPS_RETENTION_"
                                            "DAYS / Days to keep for this run; empty: "
                                            "INCIDENT_OPS_RETENTION_DAYS."),
    },
    **alerting("incident_ops_maintenance"),
)
def incident_ops_maintenance():
    @task
    def clean_metadata_db() -> dict:
        from incident_ops.airflow.tasks.maintenance import clean_metadata_db_task

        return clean_metadata_db_task(get_current_context()["params"])

    @task
    def clean_task_logs() -> dict:
        from incident_ops.airflow.tasks.maintenance import clean_task_logs_task

        return clean_task_logs_task(get_current_context()["params"])

    clean_metadata_db()
    clean_task_logs()


incident_ops_maintenance()
