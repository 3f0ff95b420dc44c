"""
### incident_report_daily / _weekly / _monthly — incident KPIs for managers, by mail and on disk

Each run reports the last complete period (yesterday, last week Monday–Sunday, last month;
midnights in Asia/Shanghai): **fetch** the tickets created, resolved or closed in it and in
the period before (two bounded desk searches) → **compute** the KPIs with pandas →
**render** an HTML report with charts and an Excel workbook → **send** one mail.

| section | what it shows |
|---|---|
| volume | tickets created by priority, system, source and category, against the previous period |
| resolution | mean and P90 time to resolve, SLA compliance by priority (targets: `sla.yaml`) |
| response | creation to first pick-up (owner set or out of *New*) against `respond` in `sla.yaml`, by priority |
| closure | auto-closed (100.7.1), confirmed, reopened as unsuccessful (100.7.3), the reopen rate |
| quality | incomplete resolutions bounced back (100.6) by handler, duplicates per master |
| escalation | tickets per rung of the ladder (100.8), urgent incidents, major-impact emergencies |
| faults | top configuration items and vendors |

Output: `reports/<daily|weekly|monthly>/<period>/` (report.html, charts, workbook.xlsx,
kpis.json, the tickets as CSV) and one mail with the charts inline and the workbook
attached. A period is mailed once: a re-run re-renders the folder but mails again only with
**resend = true**. Trigger with **date = YYYY-MM-DD** to report the period holding that
day, **language = en** for English. A desk outage fails the fetch (retried); nothing is
mailed from a partial fetch.

Policy: `include/config/reports.yaml` (recipients, language), `sla.yaml`. Connections:
`servicedesk_default`, `smtp_default`. Schedules (cron, `$INCIDENT_OPS_TIMEZONE`):
`$INCIDENT_OPS_REPORT_DAILY_SCHEDULE` (07:30), `..._WEEKLY_SCHEDULE` (Mon 08:00),
`..._MONTHLY_SCHEDULE` (1st 08:00). A run not succeeded (mailed) within
`$INCIDENT_OPS_REPORT_DAILY_DEADLINE_MINUTES` (60), `..._WEEKLY_...` (120) or
`..._MONTHLY_...` (180) of its scheduled time reaches on-call (a deadline alert).
"""

from __future__ import annotations

import os

from airflow.sdk import Param, dag, get_current_context, task
from airflow.timetables.trigger import CronTriggerTimetable

from incident_ops.airflow.bootstrap import services
from incident_ops.airflow.dag_defaults import DESK_POOL, alerting, default_args, timezone

SCHEDULES = {
    "daily": os.environ.get("INCIDENT_OPS_REPORT_DAILY_SCHEDULE", "30 7 * * *"),
    "weekly": os.environ.get("INCIDENT_OPS_REPORT_WEEKLY_SCHEDULE", "0 8 * * 1"),
    "monthly": os.environ.get("INCIDENT_OPS_REPORT_MONTHLY_SCHEDULE", "0 8 1 * *"),
}


def report_dag(kind: str) -> None:
    @dag(
        dag_id=f"incident_report_{kind}",
        schedule=CronTriggerTimetable(SCHEDULES[kind], timezone=timezone()),
        catchup=False,
        max_active_runs=1,
        doc_md=__doc__,
        tags=["itil", "incident", "report", kind],
        default_args=default_args(retry_seconds=120),
        params={
            "date": Param(None, type=["null", "string"], format="date",
                          title="报告日期 / Report date",
                          description="报告包含这一天的周期 (YYYY-MM-DD)；留空：最近一个完整周期 "
                                      "/ Report the period holding this day (YYYY-MM-DD); "
                                      "empty: the last complete period."),
            "resend": Param(False, type=["boolean", "null"], title="重新发送 / Send again",
                            description="即使本周期已发送也再发一次 / Mail the report even "
                                        "if this period was mailed."),
            # Empty (null) is the default language: the select shows it in words, and
            # clearing the select comes back to it.
            "language": Param(None, type=["null", "string"], enum=[None, "zh", "en"],
                              title="语言 / Language",
                              values_display={None: "reports.yaml 的默认 / reports.yaml's "
                                                    "default",
                                              "zh": "中文", "en": "English"},
                              description="报告的语言；留空：reports.yaml 的设置 / The "
                                          "report's language; empty: reports.yaml's."),
        },
        **alerting(f"incident_report_{kind}"),
    )
    def incident_report() -> None:
        @task(pool=DESK_POOL)
        def fetch() -> dict:
            from incident_ops.airflow.tasks.report_tasks import fetch_task

            with services(get_current_context()) as s:
                return fetch_task(kind, s)

        @task
        def compute(fetched: dict) -> dict:
            from incident_ops.airflow.tasks.report_tasks import compute_task

            with services(get_current_context()) as s:
                return compute_task(fetched, s)

        @task
        def render(computed: dict) -> dict:
            from incident_ops.airflow.tasks.report_tasks import render_task

            with services(get_current_context()) as s:
                return render_task(computed, s)

        @task
        def send(rendered: dict) -> dict:
            from incident_ops.airflow.tasks.report_tasks import send_task

            with services(get_current_context()) as s:
                return send_task(rendered, s)

        # At parse time the calls return XComArgs, which Airflow resolves when tasks run.
        send(render(compute(fetch())))  # type: ignore[arg-type]

    incident_report()


for _kind in SCHEDULES:
    report_dag(_kind)
