"""Airflow's LocalExecutor, made safe for answers that come at once (issue 24).

Configure it where LocalExecutor would be::

    AIRFLOW__CORE__EXECUTOR=incident_ops.airflow.provider.executor.LocalExecutor

**The race (Airflow 3.3.2, LocalExecutor; an upstream bug, worked around here).** A question
task ends its worker by parking (``TaskAwaitingInput``: the supervisor's ``await_input`` call,
``sdk/execution_time/supervisor.py``); the worker process then finishes, and only then does
``local_executor._run_worker`` put ``(key, SUCCESS)`` on the result queue. An answer given in
that second or two resumes the task at once: ``update_hitl_detail``
(``api_fastapi/core_api/routes/public/hitl.py``) or, when the answer came before the park,
the park itself (``ti_update_state``, ``api_fastapi/execution_api/routes/task_instances.py``)
calls ``handle_event_submit`` and the task instance is ``scheduled`` again, *same try
number*. The next scheduler loop queues and dispatches it under the same executor key
(``BaseExecutor.trigger_tasks`` no longer waits for a key to leave ``running``, although its
comment still says so), and then reads the parking worker's exit.
``SchedulerJobRunner.process_executor_events`` (``jobs/scheduler_job_runner.py``) sees
"success" for a task instance that is ``queued`` or ``running`` with that try number; its
exemption for a resumed task covers only ``scheduled``, and ``executor.has_task`` is false
once the workload has been dispatched (LocalExecutor keeps nothing in ``running``). So the
task is taken for one "killed externally": the attempt fails, the resumed worker is told
"the task shouldn't be running anymore", and Airflow retries the question. Measured: 3 of 4
emergencies answered within seconds ended in a failed run.

**The workaround.** The executor knows which workloads it has dispatched: an exit for a key
that has since been dispatched again belongs to a superseded worker (the one that parked), and
is not reported; the last workload's exit is. What an exit says is only that a process ended
(the task's own state is written by its supervisor through the API), so nothing is lost; a
worker that really dies is still found by the scheduler's heartbeat check.
CeleryExecutor is not affected: it follows one Celery result per key, and a new dispatch
replaces the old one.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

from airflow.executors import workloads
from airflow.executors.local_executor import LocalExecutor as _AirflowLocalExecutor
from airflow.utils.state import TaskInstanceState

log = logging.getLogger(__name__)
_ENDED = (TaskInstanceState.SUCCESS, TaskInstanceState.FAILED)


class LocalExecutor(_AirflowLocalExecutor):
    """Airflow's LocalExecutor; a worker's exit is reported only if it is the last worker
    dispatched for its task instance and try (see the module's docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._dispatched: Counter[Any] = Counter()  # task workloads not yet ended, by key

    def _process_workloads(self, workload_list: Sequence[Any]) -> None:
        for workload in workload_list:
            if isinstance(workload, workloads.ExecuteTask):
                self._dispatched[workload.key] += 1
        super()._process_workloads(workload_list)

    def change_state(self, key: Any, state: Any, info: Any = None,
                     remove_running: bool = True) -> None:
        if state in _ENDED and key in self._dispatched:
            self._dispatched[key] -= 1
            if self._dispatched[key] > 0:
                log.info("%s: the exit of a superseded worker (the task was resumed and "
                         "dispatched again before it ended) is not reported", key)
                return
            del self._dispatched[key]
        super().change_state(key, state, info, remove_running=remove_running)
