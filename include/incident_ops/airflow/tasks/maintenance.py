"""incident_ops_maintenance's tasks: the metadata DB and the task logs kept within retention.

``INCIDENT_OPS_RETENTION_DAYS`` (default 30; 0 turns both off) is how far back run history
and logs are kept:

- the metadata DB: Airflow's own ``airflow db clean`` (``airflow.utils.db_cleanup``) with
  ``--skip-archive`` (the rows are deleted, not moved to archive tables, so the DB really
  shrinks) and ``--error-on-cleanup-failure`` (a table it could not clean fails the task,
  and on-call hears). Airflow 3 denies a task the metadata DB (the supervisor blanks its
  URL), so the command runs as a child process with the URL of the connection
  ``incident_ops_metadata_db``: the URL is handed over in the child's environment only,
  and masked wherever it could be printed. It keeps what Airflow keeps: each DAG's latest
  scheduled run, Variables (watermarks, outboxes, on-call state), connections, pools;
- the task logs: every ``*.log*`` file under ``[logging] base_log_folder`` last written
  before the cutoff, then the directories that are left empty and are as old. Symbolic
  links are neither followed nor removed. This cleans the host the task runs on; see
  docs/deploy.md ("Retention") for several workers and remote logging.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 30
DB_CLEAN_TIMEOUT_S = 3 * 3600
# What the task's own process was given instead of the metadata DB, and the supervisor's
# plumbing: none of it belongs in the child's environment.
_NOT_INHERITED = ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__SQL_ALCHEMY_CONN",
                  "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD",
                  "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_SECRET", "__AIRFLOW_SUPERVISOR_FD",
                  "_AIRFLOW_FORK_EXEC")


class RetentionError(RuntimeError):
    """The retention could not be applied (``airflow db clean`` failed: retried)."""


class RetentionSettingError(RetentionError):
    """The retention cannot run as configured: the message says what to change (a retry
    would fail the same way, so the task fails at once)."""


def retention_days(override: Any = None) -> int:
    """The retention in days: the run's ``retention_days`` param, else the environment."""
    raw = override if override not in (None, "") else os.environ.get(
        "INCIDENT_OPS_RETENTION_DAYS", "30")
    try:
        days = int(raw)
    except (TypeError, ValueError):
        raise RetentionSettingError(f"INCIDENT_OPS_RETENTION_DAYS must be a whole number of "
                                    f"days (0: keep everything), not {raw!r}") from None
    if days < 0:
        raise RetentionSettingError(f"the retention cannot be negative ({days} days)")
    return days


def cutoff(now: datetime, days: int) -> datetime:
    """Everything older than this goes."""
    return now - timedelta(days=days)


# ------------------------------------------------------------------------ task logs
@dataclass
class LogSweep:
    files_deleted: int = 0
    bytes_deleted: int = 0
    files_kept: int = 0
    bytes_kept: int = 0
    dirs_removed: int = 0


def sweep_logs(folder: Path, before: datetime, *, dry_run: bool = False) -> LogSweep:
    """Delete log files under ``folder`` last modified before ``before``, then the
    directories left empty that are as old (a directory made a moment ago for a starting
    task is empty too, and stays)."""
    sweep = LogSweep()
    limit = before.timestamp()
    if not folder.is_dir():
        return sweep
    # A directory's own age, read before its files go (deleting them makes it new);
    # bottom-up, a directory's turn comes after its children's and before its parent's.
    age: dict[Path, float] = {}
    for root, dirs, files in os.walk(folder, topdown=False, followlinks=False):
        here = Path(root)
        try:
            age[here] = here.lstat().st_mtime
        except OSError:
            continue
        for name in files:
            path = here / name
            try:
                st = path.lstat()
            except FileNotFoundError:
                continue
            if path.is_symlink() or ".log" not in name:
                continue
            if st.st_mtime < limit:
                if not dry_run:
                    try:
                        path.unlink()
                    except FileNotFoundError:
                        continue
                sweep.files_deleted += 1
                sweep.bytes_deleted += st.st_size
            else:
                sweep.files_kept += 1
                sweep.bytes_kept += st.st_size
        for name in dirs:
            path = here / name
            try:
                if path.is_symlink() or age.get(path, limit) >= limit or any(path.iterdir()):
                    continue
                if not dry_run:
                    path.rmdir()
                sweep.dirs_removed += 1
            except OSError:  # written to meanwhile, or gone: leave it
                continue
    return sweep


def clean_task_logs(days: int, now: datetime, *, dry_run: bool = False,
                    folder: Path | None = None) -> dict[str, Any]:
    if days == 0:
        log.info("retention off (INCIDENT_OPS_RETENTION_DAYS=0): no log file deleted")
        return {"retention_days": 0}
    if folder is None:
        from airflow.sdk.configuration import conf

        folder = Path(conf.get("logging", "base_log_folder"))
    before = cutoff(now, days)
    sweep = sweep_logs(folder, before, dry_run=dry_run)
    log.info("task logs in %s older than %s: %d files, %.1f MB %s; %d files, %.1f MB kept; "
             "%d empty directories removed", folder, before.isoformat(timespec="seconds"),
             sweep.files_deleted, sweep.bytes_deleted / 1e6,
             "would be deleted (dry run)" if dry_run else "deleted", sweep.files_kept,
             sweep.bytes_kept / 1e6, sweep.dirs_removed)
    return {"retention_days": days, "before": before.isoformat(), "folder": str(folder),
            "dry_run": dry_run, **asdict(sweep)}


# ---------------------------------------------------------------------- metadata DB
def metadata_db_url(conn: Any) -> str:
    """The SQLAlchemy URL of an Airflow connection to the metadata DB: the same URL as
    ``[database] sql_alchemy_conn`` given as ``AIRFLOW_CONN_INCIDENT_OPS_METADATA_DB``
    (Airflow names a ``postgresql://`` URL's type ``postgres``, which SQLAlchemy does not
    know; a SQLite path is the connection's schema)."""
    from sqlalchemy.engine import URL

    if not conn.conn_type:
        raise RetentionSettingError(
            f"connection {conn.conn_id!r} has no type: give it the metadata DB's URL, e.g. "
            "postgresql+psycopg2://user:password@host/airflow")
    driver = {"postgres": "postgresql"}.get(conn.conn_type, conn.conn_type)
    extra = conn.extra_dejson or {}
    url = URL.create(driver, username=conn.login or None, password=conn.password or None,
                     host=conn.host or None, port=conn.port or None,
                     database=conn.schema or None,
                     query={str(k): str(v) for k, v in extra.items()})
    return url.render_as_string(hide_password=False)


def _secret_free(text: str, url: str, password: str | None) -> str:
    for secret in (url, password):
        if secret:
            text = text.replace(secret, "***")
    return text


def run_db_clean(url: str, before: datetime, *, dry_run: bool = False,
                 password: str | None = None) -> dict[str, int]:
    """``airflow db clean`` against ``url``; rows found older than ``before`` per table.

    Raises ``RetentionError`` (with the command's output, the URL masked) when it fails."""
    command = [sys.executable, "-m", "airflow", "db", "clean",
               "--clean-before-timestamp", before.isoformat(), "--yes", "--skip-archive",
               "--error-on-cleanup-failure"] + (["--dry-run"] if dry_run else [])
    env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = url
    done = subprocess.run(command, env=env, capture_output=True, text=True,
                          timeout=DB_CLEAN_TIMEOUT_S, check=False)
    output = _secret_free(done.stdout + "\n" + done.stderr, url, password)
    if done.returncode != 0:
        raise RetentionError(f"airflow db clean exited {done.returncode}:\n{output[-4000:]}")
    found: dict[str, int] = {}
    table = None
    for line in output.splitlines():
        if m := re.search(r"Checking table (\S+)", line):
            table = m.group(1)
        elif (m := re.search(r"Found (\d+) rows meeting deletion criteria", line)) and table:
            found[table] = int(m.group(1))
    return found


def clean_metadata_db(days: int, now: datetime, *, dry_run: bool = False,
                      conn_id: str | None = None) -> dict[str, Any]:
    from incident_ops.airflow.names import METADATA_DB_CONN

    if days == 0:
        log.info("retention off (INCIDENT_OPS_RETENTION_DAYS=0): the metadata DB is kept whole")
        return {"retention_days": 0}
    conn_id = conn_id or METADATA_DB_CONN
    from airflow.sdk import BaseHook
    from airflow.sdk.log import mask_secret

    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:  # noqa: BLE001 - AirflowNotFoundException and its kin
        raise RetentionSettingError(
            f"no connection {conn_id!r}: the maintenance task reaches the metadata DB "
            f"through it (Airflow 3 gives tasks no DB access). Set "
            f"AIRFLOW_CONN_{conn_id.upper()} to the URL of [database] sql_alchemy_conn, "
            f"or INCIDENT_OPS_RETENTION_DAYS=0 (docs/deploy.md, Retention)") from exc
    url = metadata_db_url(conn)
    mask_secret(url)
    before = cutoff(now, days)
    found = run_db_clean(url, before, dry_run=dry_run, password=conn.password)
    rows = sum(found.values())
    log.info("metadata DB rows older than %s: %d %s (%s)", before.isoformat(timespec="seconds"),
             rows, "would be deleted (dry run)" if dry_run else "deleted",
             ", ".join(f"{t} {n}" for t, n in sorted(found.items()) if n) or "none")
    return {"retention_days": days, "before": before.isoformat(), "dry_run": dry_run,
            "rows": rows, "tables": found}


# ------------------------------------------------------------------- the DAG's tasks
def _task(work: Any, params: Any) -> dict[str, Any]:
    from datetime import UTC

    from airflow.sdk.exceptions import AirflowFailException

    try:
        return work(retention_days((params or {}).get("retention_days")), datetime.now(UTC),
                    dry_run=bool((params or {}).get("dry_run")))
    except RetentionSettingError as exc:
        raise AirflowFailException(str(exc)) from None


def clean_metadata_db_task(params: Any) -> dict[str, Any]:
    return _task(clean_metadata_db, params)


def clean_task_logs_task(params: Any) -> dict[str, Any]:
    return _task(clean_task_logs, params)
