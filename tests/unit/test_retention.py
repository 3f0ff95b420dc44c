"""The maintenance DAG's retention rules: which log files go, the DB URL from a connection.

The whole DAG against a metadata DB and a log folder: tests/dags/test_maintenance.py.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from incident_ops.airflow.tasks.maintenance import (
    RetentionSettingError,
    metadata_db_url,
    retention_days,
    sweep_logs,
)

DAY = 86_400


def write(path: Path, size: int, days_old: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    when = time.time() - days_old * DAY
    os.utime(path, (when, when))
    return path


def make_old(path: Path, days_old: float) -> None:
    when = time.time() - days_old * DAY
    os.utime(path, (when, when))


def test_old_log_files_go_new_ones_and_what_is_not_a_log_stay(tmp_path):
    old = write(tmp_path / "dag_id=a" / "run_id=r1" / "task_id=t" / "attempt=1.log", 1000, 40)
    trigger = write(old.with_name("attempt=1.log.trigger.7.log"), 10, 40)
    new = write(tmp_path / "dag_id=a" / "run_id=r2" / "task_id=t" / "attempt=1.log", 500, 29)
    other = write(tmp_path / "dag_id=a" / "notes.txt", 5, 40)
    for d in (old.parent, old.parent.parent):
        make_old(d, 40)
    sweep = sweep_logs(tmp_path, datetime.now(UTC) - timedelta(days=30))
    assert (sweep.files_deleted, sweep.bytes_deleted) == (2, 1010)
    assert (sweep.files_kept, sweep.bytes_kept) == (1, 500)
    assert not old.exists() and not trigger.exists() and new.exists() and other.exists()
    # the old run's emptied directories go (their age is read before their files went)
    assert not (tmp_path / "dag_id=a" / "run_id=r1").exists() and sweep.dirs_removed == 2
    assert (tmp_path / "dag_id=a").exists()


def test_an_empty_directory_made_a_moment_ago_stays(tmp_path):
    (tmp_path / "dag_id=a" / "run_id=now" / "task_id=t").mkdir(parents=True)
    assert sweep_logs(tmp_path, datetime.now(UTC) - timedelta(days=30)).dirs_removed == 0
    assert (tmp_path / "dag_id=a" / "run_id=now" / "task_id=t").is_dir()


def test_symbolic_links_are_neither_followed_nor_removed(tmp_path):
    outside = write(tmp_path / "outside" / "precious.log", 10, 400)
    logs = tmp_path / "logs"
    write(logs / "dag_processor" / "2026-10-01" / "x.py.log", 10, 60)
    (logs / "dag_processor" / "latest").symlink_to(outside.parent, target_is_directory=True)
    (logs / "link.log").symlink_to(outside)
    sweep = sweep_logs(logs, datetime.now(UTC) - timedelta(days=30))
    assert sweep.files_deleted == 1 and outside.exists()
    assert (logs / "link.log").is_symlink() and (logs / "dag_processor" / "latest").is_symlink()


def test_a_dry_run_counts_and_deletes_nothing(tmp_path):
    old = write(tmp_path / "a" / "attempt=1.log", 100, 40)
    sweep = sweep_logs(tmp_path, datetime.now(UTC) - timedelta(days=30), dry_run=True)
    assert (sweep.files_deleted, sweep.bytes_deleted) == (1, 100) and old.exists()


def test_the_retention_comes_from_the_run_or_the_environment(monkeypatch):
    monkeypatch.delenv("INCIDENT_OPS_RETENTION_DAYS", raising=False)
    assert retention_days() == 30
    monkeypatch.setenv("INCIDENT_OPS_RETENTION_DAYS", "90")
    assert retention_days() == 90 and retention_days(7) == 7 and retention_days("") == 90
    monkeypatch.setenv("INCIDENT_OPS_RETENTION_DAYS", "0")
    assert retention_days() == 0  # off
    for bad in ("a month", "-1", "2.5"):
        monkeypatch.setenv("INCIDENT_OPS_RETENTION_DAYS", bad)
        with pytest.raises(RetentionSettingError, match="INCIDENT_OPS_RETENTION_DAYS|negative"):
            retention_days()


@pytest.mark.parametrize(("uri", "url"), [
    ("postgresql://airflow:p%40ss@postgres:5432/airflow",
     "postgresql://airflow:p%40ss@postgres:5432/airflow"),
    ("postgresql+psycopg2://airflow:pw@postgres/airflow?sslmode=require",
     "postgresql+psycopg2://airflow:pw@postgres/airflow?sslmode=require"),
    ("sqlite:////var/lib/airflow/airflow.db", "sqlite:////var/lib/airflow/airflow.db"),
])
def test_the_metadata_db_url_is_the_connections_uri_as_sqlalchemy_reads_it(uri, url):
    from airflow.sdk import Connection
    from sqlalchemy.engine import make_url

    built = metadata_db_url(Connection.from_uri(uri, conn_id="incident_ops_metadata_db"))
    assert built == url
    assert make_url(built).password == make_url(url).password
