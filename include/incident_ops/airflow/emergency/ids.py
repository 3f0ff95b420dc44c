"""Task ids of the ``emergency_response`` DAG, shared by the DAG file, its operators and the
helpers that read answers back from XCom. Names only: importing this costs nothing and ties
no module of the DAG to another."""

from __future__ import annotations

from typing import Any

VALIDATE = "validate"
COVERED = "covered"
PLAN_GROUP = "plan"
AFTERMATH_GROUP = "aftermath"
ESCALATE = "escalate"
ANNOUNCE_LIFTED = f"{AFTERMATH_GROUP}.announce_lifted"
PLAN_FOLLOW = f"{PLAN_GROUP}.follow_plan"
PLAN_LIFTED = f"{PLAN_GROUP}.lifted"
ANSWER_KEY = "answer"
ROUND_TASKS = ("engage_vendors", "propose_solution", "approve_team_lead", "approve_leader",
               "carry_out", "approval_outcome", "lifted")


def round_group(k: int) -> str:
    return f"round_{k}"


def round_task(k: int, name: str) -> str:
    assert name in ROUND_TASKS, name
    return f"{round_group(k)}.{name}"


def rounds_in(task_ids: Any) -> int:
    """How many rounds a DAG was built with (from its task ids)."""
    k = 0
    while round_task(k + 1, "lifted") in task_ids:
        k += 1
    return k
