"""DAG integrity: every file in ``dags/`` parses cleanly, quickly and without side effects.

The DAG processor re-parses every file every few seconds, so a DAG file must be wiring
only: no import errors, no Connection or Variable reads (they hit the secrets backend or
the API server on every parse), and no I/O that makes parsing slow. Each DAG also states the
house defaults: tags, ``catchup=False``, at least one retry.

Reads of connections and variables are made to fail while parsing, at every layer a DAG file
could reach them (Task SDK, the legacy ``airflow.models`` classes, the secrets backends), and
each attempt is recorded, so even a file that swallows the exception fails this test.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
PARSE_BUDGET_S = 2.0  # per file; a guard against I/O at parse time, not a benchmark
MIN_RETRIES = 1


class ParseTimeAccess(RuntimeError):
    """A DAG file read a Connection or Variable while being parsed."""


@dataclass(frozen=True)
class Access:
    what: str  # e.g. "connection", "variable"
    name: str
    where: str  # the DAG file and line that asked, if we can tell


def _dag_file_frame() -> str:
    for frame in inspect.stack()[2:]:
        try:
            if Path(frame.filename).resolve().is_relative_to(DAGS_FOLDER):
                return f"{Path(frame.filename).relative_to(DAGS_FOLDER)}:{frame.lineno}"
        except (OSError, ValueError):
            continue
    return "?"


@contextmanager
def forbid_connections_and_variables() -> Iterator[list[Access]]:
    """Within the block, any read of a Connection or Variable is recorded and raises."""
    accesses: list[Access] = []

    def forbid(what: str, name_arg: int) -> Callable[..., Any]:
        def refuse(*args: Any, **kwargs: Any) -> Any:
            name = str(args[name_arg]) if len(args) > name_arg else str(kwargs or "")
            access = Access(what, name, _dag_file_frame())
            accesses.append(access)
            raise ParseTimeAccess(
                f"{access.where}: reads {what} {name!r} at parse time; read it inside a task"
            )

        return refuse

    # (target, attribute, kind, index of the name among the positional arguments)
    targets = [
        ("airflow.sdk.execution_time.context", "_get_connection", "connection", 0),
        ("airflow.sdk.execution_time.context", "_async_get_connection", "connection", 0),
        ("airflow.sdk.execution_time.context", "_get_variable", "variable", 0),
        ("airflow.sdk.execution_time.context", "_get_variable_keys", "variable keys", 0),
        ("airflow.models.connection.Connection", "get_connection_from_secrets", "connection", 0),
        ("airflow.models.variable.Variable", "get", "variable", 0),
        ("airflow.models.variable.Variable", "get_variable_from_secrets", "variable", 0),
        (
            "airflow.secrets.environment_variables.EnvironmentVariablesBackend",
            "get_conn_value", "connection", 1,
        ),
        (
            "airflow.secrets.environment_variables.EnvironmentVariablesBackend",
            "get_variable", "variable", 1,
        ),
        # the backends themselves, for any path the entries above miss
        ("airflow.sdk.execution_time.supervisor", "ensure_secrets_backend_loaded", "secrets", 0),
        ("airflow.configuration", "ensure_secrets_loaded", "secrets", 0),
    ]
    with ExitStack() as stack:
        for target, attribute, what, name_arg in targets:
            # autospec so methods receive self and the recorded name is the right argument
            patcher = mock.patch(
                f"{target}.{attribute}", autospec=True, side_effect=forbid(what, name_arg)
            )
            stack.enter_context(patcher)
        yield accesses


def _dag_files() -> list[Path]:
    if not DAGS_FOLDER.is_dir():
        return []
    return sorted(
        p for p in DAGS_FOLDER.rglob("*.py")
        if "__pycache__" not in p.parts and p.name != "__init__.py"
    )


@dataclass
class Parsed:
    dagbag: Any  # airflow.dag_processing.dagbag.DagBag
    accesses: list[Access]


@pytest.fixture(scope="module")
def parsed() -> Parsed:
    if not _dag_files():
        pytest.skip(f"no DAG files in {DAGS_FOLDER} yet: nothing to check")
    from airflow.dag_processing.dagbag import DagBag

    with forbid_connections_and_variables() as accesses:
        # safe_mode=False: parse every .py file, not only those that mention "dag"
        dagbag = DagBag(dag_folder=DAGS_FOLDER, safe_mode=False)
    return Parsed(dagbag, accesses)


def test_every_dag_file_imports_without_errors(parsed: Parsed) -> None:
    errors = parsed.dagbag.import_errors
    assert not errors, "import errors:\n" + "\n\n".join(f"{f}:\n{e}" for f, e in errors.items())


def test_the_dag_folder_yields_dags(parsed: Parsed) -> None:
    assert parsed.dagbag.dags, f"no DAG found in {DAGS_FOLDER}"


def test_no_connection_or_variable_is_read_at_parse_time(parsed: Parsed) -> None:
    assert not parsed.accesses, "parse-time reads:\n" + "\n".join(
        f"  {a.where}: {a.what} {a.name!r}" for a in parsed.accesses
    )


def test_every_file_parses_within_budget(parsed: Parsed) -> None:
    slow = [
        f"{stat.file}: {stat.duration.total_seconds():.2f} s"
        for stat in parsed.dagbag.dagbag_stats
        if stat.duration.total_seconds() > PARSE_BUDGET_S
    ]
    assert not slow, f"files over the {PARSE_BUDGET_S} s parse budget: {slow}"


def test_every_dag_has_tags(parsed: Parsed) -> None:
    untagged = sorted(dag_id for dag_id, dag in parsed.dagbag.dags.items() if not dag.tags)
    assert not untagged, f"DAGs without tags: {untagged}"


def test_no_dag_catches_up(parsed: Parsed) -> None:
    catching_up = sorted(dag_id for dag_id, dag in parsed.dagbag.dags.items() if dag.catchup)
    assert not catching_up, f"DAGs with catchup=True: {catching_up}"


def test_every_dag_retries_its_tasks_by_default(parsed: Parsed) -> None:
    too_few = {
        dag_id: (dag.default_args or {}).get("retries", 0)
        for dag_id, dag in parsed.dagbag.dags.items()
        if int((dag.default_args or {}).get("retries", 0)) < MIN_RETRIES
    }
    assert not too_few, f"DAGs whose default_args retries < {MIN_RETRIES}: {too_few}"


def test_every_dag_tells_on_call_of_its_failed_runs_and_recoveries(parsed: Parsed) -> None:
    from incident_ops.airflow.alerting import OnCallNotifier

    def event(callback: Any) -> str | None:
        return callback.event if isinstance(callback, OnCallNotifier) else None

    wiring = {dag_id: (event(dag.on_failure_callback), event(dag.on_success_callback))
              for dag_id, dag in parsed.dagbag.dags.items()}
    assert wiring and set(wiring.values()) == {("failed", "succeeded")}, wiring


def test_urgent_incidents_and_closure_have_a_deadline_from_the_environment(monkeypatch) -> None:
    from datetime import timedelta

    from airflow.sdk.definitions.deadline import DeadlineReference

    from incident_ops.airflow.dag_defaults import alerting

    monkeypatch.setenv("INCIDENT_OPS_URGENT_DEADLINE_MINUTES", "10")
    monkeypatch.delenv("INCIDENT_OPS_CLOSURE_DEADLINE_MINUTES")  # the default: 60
    urgent, closure = alerting("urgent_incidents")["deadline"], alerting("incident_closure")[
        "deadline"]
    assert (urgent.interval, closure.interval) == (timedelta(minutes=10), timedelta(minutes=60))
    assert urgent.reference == DeadlineReference.DAGRUN_QUEUED_AT
    assert urgent.callback.path == "incident_ops.airflow.alerting.deadline_missed"
    assert urgent.callback.kwargs == {"minutes": 10.0}
    assert "deadline" not in alerting("incident_queue_monitor")
    monkeypatch.setenv("INCIDENT_OPS_URGENT_DEADLINE_MINUTES", "0")
    assert "deadline" not in alerting("urgent_incidents")
    monkeypatch.setenv("INCIDENT_OPS_URGENT_DEADLINE_MINUTES", "ten")
    with pytest.raises(ValueError, match="urgent_incidents.*'ten'"):
        alerting("urgent_incidents")


def test_the_reports_and_the_snapshot_have_a_deadline_from_their_scheduled_time(
        monkeypatch) -> None:
    from datetime import timedelta

    from airflow.sdk.definitions.deadline import DeadlineReference

    from incident_ops.airflow.dag_defaults import alerting

    defaults = {"incident_report_daily": 60, "incident_report_weekly": 120,
                "incident_report_monthly": 180, "incident_queue_snapshot": 30}
    for kind in ("REPORT_DAILY", "REPORT_WEEKLY", "REPORT_MONTHLY", "SNAPSHOT"):
        monkeypatch.delenv(f"INCIDENT_OPS_{kind}_DEADLINE_MINUTES")  # the suite sets 0
    for dag_id, minutes in defaults.items():
        alert = alerting(dag_id)["deadline"]
        assert alert.interval == timedelta(minutes=minutes), dag_id
        assert alert.reference == DeadlineReference.DAGRUN_LOGICAL_DATE, dag_id
        assert alert.callback.path == "incident_ops.airflow.alerting.deadline_missed"
        assert alert.callback.kwargs == {"minutes": float(minutes)}
    monkeypatch.setenv("INCIDENT_OPS_REPORT_DAILY_DEADLINE_MINUTES", "45")
    assert alerting("incident_report_daily")["deadline"].interval == timedelta(minutes=45)
    monkeypatch.setenv("INCIDENT_OPS_SNAPSHOT_DEADLINE_MINUTES", "0")
    assert "deadline" not in alerting("incident_queue_snapshot")
    monkeypatch.setenv("INCIDENT_OPS_REPORT_MONTHLY_DEADLINE_MINUTES", "an hour")
    with pytest.raises(ValueError, match="incident_report_monthly.*'an hour'"):
        alerting("incident_report_monthly")
