"""incident_ops.airflow.provider.executor.LocalExecutor: the exit of a worker whose task
instance was resumed and dispatched again before it ended is not reported (issue 24; the
whole story, on a real Airflow, is tests/e2e/test_fast_answers.py). No worker processes:
Airflow's own dispatch is replaced by a list."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow.executors import workloads
from airflow.executors.local_executor import LocalExecutor as AirflowLocalExecutor
from airflow.models.taskinstancekey import TaskInstanceKey
from airflow.utils.state import TaskInstanceState

from incident_ops.airflow.provider.executor import LocalExecutor

SUCCESS, FAILED, RUNNING = (TaskInstanceState.SUCCESS, TaskInstanceState.FAILED,
                            TaskInstanceState.RUNNING)
KEY = TaskInstanceKey("emergency_response", "round_1.approve_leader", "manual__1", 1, -1)


@pytest.fixture
def executor(monkeypatch) -> LocalExecutor:
    dispatched: list = []
    monkeypatch.setattr(AirflowLocalExecutor, "_process_workloads",
                        lambda self, items: dispatched.extend(items))
    return LocalExecutor(parallelism=2)


def dispatch(executor: LocalExecutor, key: TaskInstanceKey = KEY) -> None:
    task = workloads.ExecuteTask.model_construct(ti=SimpleNamespace(key=key))
    executor._process_workloads([task])


def test_a_parked_workers_exit_after_its_task_was_dispatched_again_is_not_reported(executor):
    dispatch(executor)  # asks the question, parks
    dispatch(executor)  # answered at once: resumed, same try, before the first had exited
    executor.change_state(KEY, SUCCESS)  # the parked worker's exit
    assert KEY not in executor.event_buffer  # not taken for a task killed from outside
    executor.change_state(KEY, RUNNING)  # the resumed worker's own events still go through
    assert executor.event_buffer.pop(KEY)[0] == RUNNING
    executor.change_state(KEY, FAILED)  # ... and its end, whatever it is
    assert executor.event_buffer[KEY][0] == FAILED


def test_one_worker_per_task_is_reported_as_airflow_reports_it(executor):
    other = TaskInstanceKey("emergency_response", "validate", "manual__1", 1, -1)
    dispatch(executor)
    dispatch(executor, other)
    executor.change_state(KEY, SUCCESS)
    executor.change_state(other, FAILED)
    executor.change_state(TaskInstanceKey("d", "never_dispatched", "r", 1, -1), FAILED)
    assert {k.task_id: s for k, (s, _) in executor.event_buffer.items()} == {
        "round_1.approve_leader": SUCCESS, "validate": FAILED, "never_dispatched": FAILED}
