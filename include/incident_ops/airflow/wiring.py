"""The task graph every fetch → decide → apply → report DAG shares, wired in one place.

A DAG file names its plan function (``"module:function"``, imported when the task runs, so
parsing the DAG file imports nothing heavy) and calls ``plan_apply_report`` inside its
``@dag`` function. The ``dry_run`` param of the DAG decides whether apply writes.
"""

from __future__ import annotations

import importlib
from typing import Any

from incident_ops.airflow.dag_defaults import DESK_POOL


def _call(target: str, *args: Any) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)(*args)


def plan_apply_report(plan_function: str) -> None:
    from airflow.sdk import get_current_context, task

    @task(task_id="plan", pool=DESK_POOL)
    def plan() -> dict:
        """fetch what changed, decide (pure policy): the plan travels on as JSON"""
        return _call(plan_function, get_current_context())

    @task(task_id="apply", pool=DESK_POOL)
    def apply(planned: dict) -> list | None:
        """write to the desk and send messages, idempotently (skipped in a dry run)"""
        from incident_ops.airflow.pipeline import apply_task

        return apply_task(planned, dry_run=get_current_context()["params"]["dry_run"])

    @task(task_id="report")
    def report(planned: dict, applied: list | None) -> dict:
        """the plan with its outcomes as JSON + HTML; advance the watermark"""
        from incident_ops.airflow.pipeline import report_task

        return report_task(planned, applied, dry_run=get_current_context()["params"]["dry_run"])

    planned = plan()
    # At parse time the calls return XComArgs, which Airflow resolves when the tasks run.
    report(planned, apply(planned))  # type: ignore[arg-type]
