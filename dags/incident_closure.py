"""
### incident_closure — close resolved incidents the way the process says (100.6, 100.7)

Every run: **plan** (read resolved tickets changed since the last run, those awaiting a
requester's answer and their duplicate families; decide) → **apply** (write to the desk,
send the mails) → **report** (JSON + HTML page under `reports/incident_closure/`).

| ticket | step | what happens |
|---|---|---|
| resolution record incomplete | 100.6 | back to its resolver's tier, one comment listing what is missing (中文/English), one mail |
| resolved by L1/L2, not dispatched by the help desk | 100.7.4 | closed with its close code, duplicates with it |
| resolved or dispatched by the help desk: monitoring alarm or auto-transfer | 100.7.1 | closed with its close code; every duplicate closed with the same code |
| resolved or dispatched by the help desk: any other source | 100.7.2 | the requester is asked once; *confirmed* → closed; no answer in time → help desk reminded once |
| requester says not fixed | 100.7.3 | closed *unsuccessful*; a new ticket to the original handler at his tier |

Trigger with **dry_run = true** to see the plan without changing anything. Policy:
`include/config/closure.yaml`. Connections: `servicedesk_default`, `smtp_default`.
Schedule: `$INCIDENT_OPS_CLOSURE_SCHEDULE` (cron, Asia/Shanghai; default every 10 minutes).
"""

from __future__ import annotations

import os

from airflow.sdk import Param, dag
from airflow.timetables.trigger import CronTriggerTimetable

from incident_ops.airflow.dag_defaults import alerting, default_args, timezone
from incident_ops.airflow.tasks.plans import plan_closure
from incident_ops.airflow.tasks.wiring import plan_apply_report


@dag(
    schedule=CronTriggerTimetable(
        os.environ.get("INCIDENT_OPS_CLOSURE_SCHEDULE", "*/10 * * * *"),
        timezone=timezone(),
    ),
    catchup=False,
    max_active_runs=1,  # runs never overlap; writes are conditional should one be forced
    doc_md=__doc__,
    tags=["itil", "incident", "closure", "100.6", "100.7"],
    default_args=default_args(retry_seconds=60),
    params={"dry_run": Param(False, type=["boolean", "null"], title="演练 / Dry run",
                             description="只做计划和报告，不修改服务台 / Plan and report "
                                         "only; change nothing in the desk.")},
    **alerting("incident_closure"),
)
def incident_closure():
    plan_apply_report(plan_closure)


incident_closure()
