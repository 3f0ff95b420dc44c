"""Run one ``emergency_response`` scenario under ``dag.test()``, answering its questions.

Started by ``test_emergency_response.py`` as a subprocess that is SIGKILLed at a deadline:
a human-in-the-loop task under ``dag.test()`` waits forever (nothing enforces its timeout)
and ignores SIGTERM, so a wrong answer script must not be able to hang CI.

The answers are given from a background thread the way Airflow's REST handler does it:
write the response on the task's ``HITLDetail`` row, then ``handle_event_submit`` with the
resume payload, which moves the task from ``awaiting_input`` back to ``scheduled``.

``python -m tests.dags.emergency_runner SCENARIOS.json RESULTS.json``; each scenario holds
``conf``, ``answers`` (task id -> ``{"chosen": [...] | null (= accept the preselected),
"params": {...}, "by": {"id", "name"}}``, or a list of them: the question is answered with
each in turn when it is asked again, after an answer was sent back) and ``fail_once_after``
(task ids whose first
try fails *after* doing its work, to prove a retry repeats nothing) and ``continue``
(answers for the run the DAG triggers when its rounds are exhausted, run here with the
conf it was triggered with). ``$INCIDENT_OPS_EMERGENCY_ROUNDS`` sets the rounds per run.
"""

from __future__ import annotations

import _thread
import functools
import json
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

POLL_S = 0.2
RESUBMIT_AFTER_S = 3.0  # answered, yet parked again: dag.test wrote its park state after us
DEFAULT_USER = {"id": "sun.min", "name": "孙敏 (事件经理)"}


class Answerer(threading.Thread):
    """Answers every question of ``dag_id`` that parks in ``awaiting_input``."""

    def __init__(self, dag_id: str, answers: dict[str, Any],
                 mail_back_before: dict[str, str] | None = None):
        super().__init__(name="hitl-answerer", daemon=True)
        self.dag_id = dag_id
        self.answers = answers
        self.mail_back_before = mail_back_before or {}
        self.asked: dict[str, dict[str, Any]] = {}  # task id -> the question as asked
        self.times_asked: dict[str, int] = {}  # task id -> answers given (sent back: > 1)
        self.answered_at: dict[str, float] = {}
        self.unexpected: str | None = None
        self.halt = threading.Event()

    def run(self) -> None:
        from sqlalchemy.exc import OperationalError

        while not self.halt.is_set():
            try:
                self.tick()
            except OperationalError:  # SQLite busy with the run's own writes: next poll
                pass
            self.halt.wait(POLL_S)

    def tick(self) -> None:
        from airflow._shared.timezones import timezone
        from airflow.models.hitl import HITLDetail
        from airflow.models.taskinstance import TaskInstance as TI
        from airflow.models.trigger import handle_event_submit
        from airflow.triggers.base import TriggerEvent
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState
        from sqlalchemy import select

        with create_session() as session:
            parked = session.scalars(select(TI).where(
                TI.dag_id == self.dag_id, TI.state == TaskInstanceState.AWAITING_INPUT)).all()
            for ti in parked:
                detail = session.get(HITLDetail, ti.id)
                if detail is None:
                    continue
                if detail.responded_at is None:
                    spec = self.answers.get(ti.task_id)
                    if isinstance(spec, list):
                        given = self.times_asked.get(ti.task_id, 0)
                        spec = spec[min(given, len(spec) - 1)]
                    if self.mail_back_before.get("task") == ti.task_id:
                        Path(self.mail_back_before["switch"]).unlink(missing_ok=True)
                    if spec is None:
                        self.unexpected = ti.task_id
                        _thread.interrupt_main()  # stop dag.test(): the script has no answer
                        return
                    self.asked[ti.task_id] = {"subject": detail.subject, "body": detail.body,
                                              "defaults": detail.defaults,
                                              "options": detail.options,
                                              "assignees": detail.assignees}
                    self.times_asked[ti.task_id] = self.times_asked.get(ti.task_id, 0) + 1
                    chosen = spec.get("chosen") or list(detail.defaults or [])
                    if not chosen:  # nothing preselected to accept: the script is wrong
                        self.unexpected = f"{ti.task_id} (no option chosen or preselected)"
                        _thread.interrupt_main()
                        return
                    detail.chosen_options = chosen
                    detail.params_input = spec.get("params") or {}
                    detail.responded_by = spec.get("by") or DEFAULT_USER
                    detail.responded_at = timezone.utcnow()
                    session.add(detail)
                elif time.monotonic() - self.answered_at.get(ti.task_id, 0) < RESUBMIT_AFTER_S:
                    continue
                handle_event_submit(TriggerEvent(detail.as_resume_event_payload()),
                                    task_instance=ti, session=session)
                self.answered_at[ti.task_id] = time.monotonic()
            session.commit()


def fail_once_after(task: Any) -> None:
    """Make the task's first try fail after its work is done; the retry comes at once."""
    real = task.python_callable
    tries = {"n": 0}

    @functools.wraps(real)  # Airflow passes a callable the context keys its signature names
    def flaky(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        tries["n"] += 1
        if tries["n"] == 1:
            raise RuntimeError(f"{task.task_id}: injected failure after its side effects")
        return result

    task.python_callable = flaky
    task.retries = max(task.retries, 1)
    task.retry_delay = timedelta(0)
    task.retry_exponential_backoff = False


def run_one(dag: Any, scenario: dict[str, Any]) -> dict[str, Any]:
    from tests.support.airflow_dags import task_states

    for task_id in scenario.get("fail_once_after", []):
        fail_once_after(dag.task_dict[task_id])
    answerer = Answerer(dag.dag_id, scenario.get("answers", {}),
                        scenario.get("mail_back_before"))
    answerer.start()
    result: dict[str, Any] = {}
    started = time.monotonic()
    try:
        run = dag.test(run_conf=scenario["conf"])
    except KeyboardInterrupt:
        result = {"error": "UnexpectedQuestion", "message": f"no answer for {answerer.unexpected}"}
    except Exception as exc:  # noqa: BLE001 - the test asserts on what was refused and why
        result = {"error": type(exc).__name__, "message": str(exc)}
    else:
        states = task_states(run)
        result = {"run_id": run.run_id, "state": str(run.state), "states": states,
                  "xcom": {t: xcom(run, t) for t, s in states.items() if s == "success"
                           and not t.startswith(("validate", "covered", "plan."))},
                  "asset_events": asset_events(run.run_id)}
    finally:
        answerer.halt.set()
        answerer.join(timeout=5)
    result["asked"] = answerer.asked
    result["times_asked"] = answerer.times_asked
    result["seconds"] = round(time.monotonic() - started, 1)
    follow_up = scenario.get("continue")
    if follow_up is not None and result.get("state") == "success":
        # Play the scheduler: run the continuation the DAG triggered, with its conf.
        triggered = triggered_conf(result["xcom"]["escalate"]["run_id"])
        result["triggered"] = triggered is not None
        if triggered is not None:
            result["continued"] = run_one(dag, {**follow_up, "conf": triggered})
    return result


def triggered_conf(run_id: str) -> dict[str, Any] | None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        run = session.scalar(select(DagRun).where(DagRun.run_id == run_id))
        return dict(run.conf) if run is not None else None


def xcom(run: Any, task_id: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.scalar(select(XComModel).where(
            XComModel.dag_id == run.dag_id, XComModel.run_id == run.run_id,
            XComModel.task_id == task_id, XComModel.key == "return_value"))
        return None if row is None else XComModel.deserialize_value(row)


def asset_events(run_id: str) -> list[dict[str, Any]]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(select(AssetModel.uri, AssetEvent.extra).join(
            AssetModel, AssetModel.id == AssetEvent.asset_id).where(
            AssetEvent.source_run_id == run_id)).all()
        return [{"uri": uri, "extra": extra} for uri, extra in rows]


def main(scenario_path: str, result_path: str) -> None:
    from tests.support.airflow_dags import load_dag

    scenarios = json.loads(Path(scenario_path).read_text(encoding="utf-8"))
    dag = load_dag("emergency_response")
    results = [run_one(dag, s) for s in scenarios]
    Path(result_path).write_text(json.dumps(results, ensure_ascii=False, default=str),
                                 encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
