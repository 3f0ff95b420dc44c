"""The task graph every fetch → decide → apply → report DAG shares, wired in one place.

A DAG file passes its plan function (``airflow.plans``: it takes the run's ``Services`` and
returns ``pipeline.planned(...)``) to ``plan_apply_report`` inside its ``@dag`` function. The
``dry_run`` param decides whether apply writes. Report runs whatever happened to apply
(``all_done``) and fails the run when apply did not finish cleanly; its extra link
**Plan page** opens the run's plan page (``plan_pages``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from incident_ops.airflow.dag_defaults import DESK_POOL
from incident_ops.airflow.web.plan_pages import PlanPageLink

if TYPE_CHECKING:
    from incident_ops.airflow.bootstrap import Services


def plan_apply_report(plan_function: Callable[[Services], dict[str, Any]]) -> None:
    from airflow.sdk import TriggerRule, get_current_context, task

    from incident_ops.airflow.bootstrap import services

    @task(task_id="plan", pool=DESK_POOL)
    def plan() -> dict:
        """fetch what changed, decide (pure policy): the plan travels on as JSON"""
        with services(get_current_context()) as s:
            return plan_function(s)

    @task(task_id="apply", pool=DESK_POOL)
    def apply(planned: dict) -> dict | None:
        """write to the desk and send messages, once (skipped in a dry run)"""
        from incident_ops.airflow.tasks.pipeline import apply_task

        with services(get_current_context()) as s:
            return apply_task(planned, s)

    @task(task_id="report", trigger_rule=TriggerRule.ALL_DONE)
    def report() -> dict:
        """the plan with its outcomes as JSON + HTML; advance the watermark"""
        from incident_ops.airflow.tasks.pipeline import report_task

        with services(get_current_context()) as s:
            return report_task(s)

    # At parse time the calls return XComArgs, which Airflow resolves when the tasks run.
    reported = report()
    apply(plan()) >> reported  # type: ignore[arg-type]
    # TaskFlow has no parameter for extra links; the operator behind the call takes them.
    reported.operator.operator_extra_links = [PlanPageLink()]  # type: ignore[attr-defined]
