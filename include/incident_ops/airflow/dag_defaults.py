"""Defaults every project DAG shares, read from the environment only (cheap at parse time).

``INCIDENT_OPS_RETRIES`` (default 2) and ``INCIDENT_OPS_RETRY_DELAY_SECONDS`` (default 60)
let a deployment tune how long a desk outage is ridden out; the test suite shortens the
delay so a failing task fails fast instead of waiting minutes.

``alerting(dag_id)`` is the on-call alerting of every DAG (``airflow.alerting``): its
failure and success callbacks and, for the DAGs that must keep running or deliver by an
hour, a deadline (minutes; 0 turns one off):

- ``INCIDENT_OPS_URGENT_DEADLINE_MINUTES`` (10) for ``urgent_incidents`` and
  ``INCIDENT_OPS_CLOSURE_DEADLINE_MINUTES`` (60) for ``incident_closure``, counted from
  when a run was queued;
- ``INCIDENT_OPS_REPORT_DAILY_DEADLINE_MINUTES`` (60), ``..._WEEKLY_...`` (120),
  ``..._MONTHLY_...`` (180) and ``INCIDENT_OPS_SNAPSHOT_DEADLINE_MINUTES`` (30) for the
  reports and the queue snapshot, counted from the run's scheduled time (its logical
  date): the 07:30 daily report not delivered by 08:30 reaches on-call, however late the
  scheduler created its run. A run triggered without a logical date has no deadline.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

DESK_POOL = "servicedesk"  # every task that calls the desk runs in this pool


def default_args(retry_seconds: float = 60) -> dict[str, Any]:
    delay = float(os.environ.get("INCIDENT_OPS_RETRY_DELAY_SECONDS", retry_seconds))
    return {
        "owner": "incident-ops",
        "retries": int(os.environ.get("INCIDENT_OPS_RETRIES", "2")),
        "retry_delay": timedelta(seconds=delay),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(seconds=max(delay, 1) * 10),
    }


# The DAGs whose promise is an hour (a report in the morning, a snapshot at the shift's
# start): their deadline counts from the scheduled time, the others' from the queueing.
SCHEDULED_TIME_DEADLINES = frozenset({"incident_report_daily", "incident_report_weekly",
                                      "incident_report_monthly", "incident_queue_snapshot"})


def deadline_minutes(dag_id: str) -> float:
    """How long a run of ``dag_id`` may go without succeeding before on-call hears (0: never)."""
    configured = {
        "urgent_incidents": os.environ.get("INCIDENT_OPS_URGENT_DEADLINE_MINUTES", "10"),
        "incident_closure": os.environ.get("INCIDENT_OPS_CLOSURE_DEADLINE_MINUTES", "60"),
        "incident_report_daily": os.environ.get("INCIDENT_OPS_REPORT_DAILY_DEADLINE_MINUTES",
                                                "60"),
        "incident_report_weekly": os.environ.get(
            "INCIDENT_OPS_REPORT_WEEKLY_DEADLINE_MINUTES", "120"),
        "incident_report_monthly": os.environ.get(
            "INCIDENT_OPS_REPORT_MONTHLY_DEADLINE_MINUTES", "180"),
        "incident_queue_snapshot": os.environ.get("INCIDENT_OPS_SNAPSHOT_DEADLINE_MINUTES",
                                                  "30"),
    }
    raw = configured.get(dag_id)
    if raw is None:
        return 0.0
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise ValueError(f"the deadline of {dag_id} must be minutes (a number), not {raw!r}")\
            from None


def alerting(dag_id: str) -> dict[str, Any]:
    """``@dag(..., **alerting("dag_id"))``: on-call hears of every failed run (and of the
    recovery after), and of a run that has not succeeded within the DAG's deadline."""
    from incident_ops.airflow.alerting import OnCallNotifier, deadline_missed

    kwargs: dict[str, Any] = {"on_failure_callback": OnCallNotifier("failed"),
                              "on_success_callback": OnCallNotifier("succeeded")}
    minutes = deadline_minutes(dag_id)
    if minutes > 0:
        from airflow.sdk.definitions.callback import AsyncCallback
        from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

        scheduled = dag_id in SCHEDULED_TIME_DEADLINES
        kwargs["deadline"] = DeadlineAlert(
            reference=DeadlineReference.DAGRUN_LOGICAL_DATE if scheduled
            else DeadlineReference.DAGRUN_QUEUED_AT,
            interval=timedelta(minutes=minutes),
            callback=AsyncCallback(deadline_missed, kwargs={"minutes": minutes}),
            name=f"{dag_id} not succeeded within {minutes:g} min of its "
                 f"{'scheduled time' if scheduled else 'queueing'}")
    return kwargs


def timezone() -> str:
    """The deployment's zone for every schedule (``config.timezone``: the one source)."""
    from incident_ops.config import timezone as configured

    return configured()
