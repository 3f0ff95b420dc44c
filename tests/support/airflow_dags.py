"""Running a project DAG in-process with ``dag.test()`` and reading what its tasks returned."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"


def load_dag(dag_id: str) -> Any:
    """A freshly parsed DAG: ``dag.test()`` keeps a run's conf in the DAG's params, so a
    DAG object reused across runs would carry one run's ``dry_run`` into the next."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag(dag_id)
    assert dag is not None, f"no DAG {dag_id} in {DAGS_FOLDER}"
    if any(not p.has_value and p.value is not None for p in dag.params.values()):
        # Airflow 3.3.2's dag.test() builds a DAG callback's context without the run's conf,
        # so a DAG with a param that has no default cannot finish a test run with its
        # on-call callbacks on (ParamValidationError). They run in the DAG processor in a
        # deployment, where they get the conf: tests/demo/test_readme.py fails a run of
        # such a DAG (emergency_response) on the demo and reads on-call's mail.
        dag.on_failure_callback = dag.on_success_callback = None
        dag.has_on_failure_callback = dag.has_on_success_callback = False
    return dag


def run_dag(dag_id: str, conf: dict[str, Any] | None = None,
            logical_date: datetime | None = None) -> Any:
    """One run of ``dag_id``; returns the DagRun (state, run_id)."""
    dag = load_dag(dag_id)
    kwargs: dict[str, Any] = {"run_conf": conf or {}}
    if logical_date is not None:
        kwargs["logical_date"] = logical_date
    return dag.test(**kwargs)


def task_states(dag_run: Any) -> dict[str, str]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id == dag_run.dag_id,
                                                 TaskInstance.run_id == dag_run.run_id).all()
        return {ti.task_id: str(ti.state) for ti in tis}


def xcom(dag_run: Any, task_id: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(XComModel).filter(
            XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id,
            XComModel.task_id == task_id, XComModel.key == "return_value").one_or_none()
        if row is None:
            return None
        value = row.value
    import json

    return json.loads(value) if isinstance(value, (str, bytes)) else value


def ensure_pool(name: str = "servicedesk", slots: int = 4) -> None:
    from airflow.models.pool import Pool

    Pool.create_or_update_pool(name, slots, "calls to the service desk", include_deferred=False)


class NoopNotifier:
    """Counts what a test-side apply would send (the tests that use it assert on the desk)."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send_email(self, email: Any) -> None:
        self.sent.append(email)

    def send_sms(self, sms: Any) -> None:
        self.sent.append(sms)


@contextmanager
def own_pipeline_state(prefix: str = "incident_ops.") -> Iterator[None]:
    """The pipelines' Airflow Variables (watermarks, outboxes, on-call state) set aside while
    inside and put back on leaving: a module on a desk of its own must neither replay another
    desk's owed actions (same ticket numbers, other tickets) nor leave its own behind."""
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    def ours(session: Any) -> list[Any]:
        return session.query(Variable).filter(Variable.key.startswith(prefix)).all()

    with create_session() as session:
        saved = [(v.key, v.val, v.description) for v in ours(session)]
        for v in ours(session):
            session.delete(v)
    try:
        yield
    finally:
        with create_session() as session:
            for v in ours(session):
                session.delete(v)
        for key, value, description in saved:
            if value is not None:  # (None: written under another Fernet key, unreadable)
                Variable.set(key, value, description=description)
