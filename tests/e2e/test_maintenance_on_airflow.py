"""The retention DAG on a real Airflow: its task runs where Airflow 3 keeps task code out of
the metadata DB (the supervisor replaces the DB URL in the task's process), and still
cleans it, through the connection ``incident_ops_metadata_db``, without the URL showing in
the task's log. dag.test() (tests/dags/test_maintenance.py) runs tasks in the test's own
process, where nothing is blocked: only a real worker shows that this works.

An Airflow of its own (API server, scheduler, DAG processor; LocalExecutor on SQLite), no
desk: the DAG never calls one.
"""

from __future__ import annotations

import ast
import json
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest

from tests.dags.test_maintenance import age, counts
from tests.support.airflow_server import AirflowServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAG = "incident_ops_maintenance"


def _done(server: AirflowServer, run_id: str) -> str:
    return server.wait(lambda: (s := server.run_state(DAG, run_id)) in ("success", "failed")
                       and s, f"{DAG} {run_id} to finish", 240)


def _task_path(run_id: str, task_id: str) -> str:
    return f"/api/v2/dags/{DAG}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}"


def _returned(server: AirflowServer, run_id: str, task_id: str) -> Any:
    answer = server.api("admin", "GET", _task_path(run_id, task_id)
                        + "/xcomEntries/return_value", params={"deserialize": "true"})
    answer.raise_for_status()
    value = answer.json()["value"]
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return ast.literal_eval(value)
    return value


def _log(server: AirflowServer, run_id: str, task_id: str) -> str:
    answer = server.api("admin", "GET", _task_path(run_id, task_id) + "/logs/1",
                        headers={"Accept": "application/json"})
    answer.raise_for_status()
    return "\n".join(str(line.get("event", line)) if isinstance(line, dict) else str(line)
                     for line in answer.json()["content"])


def test_the_maintenance_task_cleans_the_metadata_db_from_a_worker_kept_out_of_it(tmp_path):
    home = tmp_path / "airflow"
    db = home / "airflow.db"
    url = f"sqlite:///{db}"
    env = {"AIRFLOW_CONN_INCIDENT_OPS_METADATA_DB": url, "INCIDENT_OPS_ALERT_TO": ""}
    with AirflowServer(home, {}, env=env,
                       components=("api-server", "scheduler", "dag-processor")) as server:
        history = server.trigger(DAG, {"dry_run": True})
        assert _done(server, history) == "success", server.task_states(DAG, history)
        age(db, [history], timedelta(days=40))
        before = counts(db, [history])

        run = server.trigger(DAG, {})
        assert _done(server, run) == "success", server.task_states(DAG, run)
        after = counts(db, [history])
        cleaned = _returned(server, run, "clean_metadata_db")
        log = _log(server, run, "clean_metadata_db")

    print(f"\nrows of the aged run on a real Airflow: {before} -> {after}; the task said: "
          f"{cleaned['rows']} rows ({cleaned['tables'].get('dag_run')} DAG run)")
    assert before["dag_run"] == 1 and before["task_instance"] == 2
    assert after == {"dag_run": 0, "task_instance": 0, "xcom": 0, "log": 0}
    assert cleaned["tables"]["dag_run"] == 1 and cleaned["dry_run"] is False
    assert "metadata DB rows older than" in log, log[-2000:]
    assert url not in log and str(db) not in log, log[-2000:]
