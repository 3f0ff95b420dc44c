"""incident_ops_maintenance: the metadata DB and the task logs kept within the retention.

Real runs make the history (this DAG's own runs, dry: DAG runs, task instances, XComs, the
audit log, log files); two of them are then aged 40 days in the session's metadata DB, and
old and new log files are laid out as a worker leaves them. The DAG then runs with the
default retention (30 days) through its connection to that DB (the session's SQLite, as a
deployment's PostgreSQL) and Airflow's own ``airflow db clean``. Rows and log bytes are
counted before and after.
"""

from __future__ import annotations

import os
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.airflow_dags import run_dag, task_states, xcom

pytestmark = [pytest.mark.integration, pytest.mark.dags]

DAG = "incident_ops_maintenance"
AGED = timedelta(days=40)
# table -> the column db clean judges age by (Airflow's utils/db_cleanup.py)
RECENCY = {"dag_run": "start_date", "task_instance": "start_date", "xcom": "timestamp",
           "log": "dttm", "task_instance_history": "start_date", "job": "latest_heartbeat"}


@pytest.fixture
def metadata_db(airflow_db, monkeypatch) -> Path:
    monkeypatch.setenv("AIRFLOW_CONN_INCIDENT_OPS_METADATA_DB",
                       os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    monkeypatch.delenv("INCIDENT_OPS_RETENTION_DAYS", raising=False)
    return airflow_db


def counts(db: Path, run_ids: list[str]) -> dict[str, int]:
    """Rows per table that belong to ``run_ids`` (the aged or the fresh runs)."""
    marks = ",".join("?" * len(run_ids))
    with sqlite3.connect(db) as c:
        return {t: c.execute(f"SELECT count(*) FROM {t} WHERE run_id IN ({marks})",
                             run_ids).fetchone()[0]
                for t in ("dag_run", "task_instance", "xcom", "log")}


def all_rows(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as c:
        tables = [r[0] for r in c.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
        return {t: c.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


def age(db: Path, run_ids: list[str], by: timedelta) -> None:
    """Move the runs' rows ``by`` into the past, as if they had run then."""
    marks = ",".join("?" * len(run_ids))
    with sqlite3.connect(db) as c:
        for table, column in RECENCY.items():
            if table == "job":
                continue
            c.execute(f"UPDATE {table} SET {column} = datetime({column}, ?) "
                      f"WHERE run_id IN ({marks})", [f"-{by.days} days", *run_ids])
        c.execute("UPDATE dag_run SET queued_at = datetime(queued_at, ?), end_date = "
                  f"datetime(end_date, ?) WHERE run_id IN ({marks})",
                  [f"-{by.days} days", f"-{by.days} days", *run_ids])


def lay_out_logs(base: Path, run: str, files: int, size: int, mtime: float) -> list[Path]:
    """Log files as a worker leaves them: dag_id=…/run_id=…/task_id=…/attempt=1.log."""
    made = []
    for n in range(files):
        path = base / "dag_id=incident_closure" / f"run_id={run}" / f"task_id=task_{n}" / \
            "attempt=1.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
        made.append(path)
    for path in made + sorted({p.parent for p in made} | {p.parent.parent for p in made},
                              reverse=True):
        os.utime(path, (mtime, mtime))
    return made


def log_bytes(base: Path) -> tuple[int, int]:
    files = [p for p in base.rglob("*") if p.is_file() and not p.is_symlink()]
    return len(files), sum(p.stat().st_size for p in files)


def test_a_daily_maintenance_run_keeps_the_db_and_the_logs_within_the_retention(metadata_db):
    base = Path(os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"])
    # History: two dry runs (they delete nothing: a dry run only counts)
    old_runs = [run_dag(DAG, {"dry_run": True}, logical_date=datetime.now(UTC)
                        - timedelta(minutes=10 - n)) for n in range(2)]
    for run in old_runs:
        assert str(run.state) == "success", task_states(run)
        assert xcom(run, "clean_metadata_db")["dry_run"] is True
    fresh = run_dag(DAG, {"dry_run": True}, logical_date=datetime.now(UTC) - timedelta(minutes=5))
    old_ids, fresh_ids = [r.run_id for r in old_runs], [fresh.run_id]
    age(metadata_db, old_ids, AGED)
    now = time.time()
    old_logs = lay_out_logs(base, "scheduled__old", 30, 100_000, now - AGED.total_seconds())
    new_logs = lay_out_logs(base, "scheduled__new", 5, 100_000, now - 86_400)

    before_old, before_fresh = counts(metadata_db, old_ids), counts(metadata_db, fresh_ids)
    before_rows, (before_files, before_bytes) = all_rows(metadata_db), log_bytes(base)
    assert before_old["dag_run"] == 2 and before_old["task_instance"] == 4
    assert before_old["xcom"] >= 4 and before_old["log"] > 0

    run = run_dag(DAG)  # the default retention: 30 days
    assert str(run.state) == "success", task_states(run)

    after_old, after_fresh = counts(metadata_db, old_ids), counts(metadata_db, fresh_ids)
    after_rows, (after_files, after_bytes) = all_rows(metadata_db), log_bytes(base)
    print(f"\nrows of the 2 aged runs: {before_old} -> {after_old}"
          f"\nrows of the fresh run:   {before_fresh} -> {after_fresh}"
          f"\nall rows in the metadata DB: {sum(before_rows.values())} -> "
          f"{sum(after_rows.values())}"
          f"\nlog files under {base}: {before_files} files, {before_bytes:,} bytes -> "
          f"{after_files} files, {after_bytes:,} bytes")
    assert after_old == {"dag_run": 0, "task_instance": 0, "xcom": 0, "log": 0}
    assert after_fresh == before_fresh  # newer than the retention: kept
    assert not [t for t in after_rows if t.startswith("_airflow_deleted__")]  # no archive
    assert not any(p.exists() for p in old_logs)
    assert not (base / "dag_id=incident_closure" / "run_id=scheduled__old").exists()
    assert all(p.exists() for p in new_logs)
    # the maintenance run's own log files are new: the folder shrinks by a little less
    assert before_bytes - after_bytes > 0.9 * 30 * 100_000

    db, logs = xcom(run, "clean_metadata_db"), xcom(run, "clean_task_logs")
    assert db["retention_days"] == 30 and db["dry_run"] is False
    # (deleting a run deletes its task instances and XComs with it: counted as the run's)
    assert db["tables"]["dag_run"] == 2 and db["tables"]["log"] >= before_old["log"]
    assert logs["files_deleted"] == 30 and logs["bytes_deleted"] == 30 * 100_000
    assert "sqlite" not in str(db) and "sql_alchemy" not in str(db)


def test_without_the_connection_the_run_fails_saying_what_to_set(metadata_db, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_INCIDENT_OPS_METADATA_DB")
    run = run_dag(DAG, {"dry_run": True})
    states = task_states(run)
    assert states == {"clean_metadata_db": "failed", "clean_task_logs": "success"}, states
