"""The reports' and the snapshot's deadline, through Airflow's own deadline machinery.

dag.test() has no scheduler to notice a missed deadline, so this test takes the steps the
components take, with Airflow's code, on the session's metadata DB: the DAG processor's
parse and sync (``sync_bag_to_db``), the scheduler's creation of the 07:30 run (the
``Deadline`` row it gets), the scheduler's query for missed deadlines and its
``handle_miss``, and the triggerer's ``CallbackTrigger`` running our callback, which mails
on-call through the session's SMTP server. The demo (tests/demo/test_readme.py) runs the
same path with real components for ``urgent_incidents``.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.dags]

ONCALL = "oncall@ops.example.cn"
REPORTS_FILE = Path(__file__).resolve().parents[2] / "dags" / "incident_reports.py"
SNAPSHOT_FILE = REPORTS_FILE.with_name("incident_queue_snapshot.py")
# 2026-12-07 07:30 Asia/Shanghai: the daily report's scheduled time (its logical date)
SCHEDULED = datetime(2026, 12, 6, 23, 30, tzinfo=UTC)


def _sync(path: Path) -> None:
    """Parse ``path`` as the DAG processor does and store its DAGs (and deadline alerts)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()  # the "dags-folder" bundle the DAGs belong to
    bag = DagBag(dag_folder=str(path), safe_mode=False)
    assert not bag.import_errors, bag.import_errors
    sync_bag_to_db(bag, "dags-folder", None)


@pytest.fixture
def deadlines_on(airflow_db, mailbox, monkeypatch):
    """The deployment's defaults (the suite turns deadlines off for dag.test()); on-call
    on. Afterwards the DAGs are stored again without deadlines, as the rest of the suite
    expects them."""
    from airflow.models.variable import Variable

    for kind in ("REPORT_DAILY", "REPORT_WEEKLY", "REPORT_MONTHLY", "SNAPSHOT"):
        monkeypatch.delenv(f"INCIDENT_OPS_{kind}_DEADLINE_MINUTES")
    monkeypatch.setenv("INCIDENT_OPS_ALERT_TO", ONCALL)
    Variable.delete("incident_ops.oncall.incident_report_daily")
    Variable.delete("incident_ops.oncall.silence")
    _sync(REPORTS_FILE)
    _sync(SNAPSHOT_FILE)
    yield mailbox
    monkeypatch.undo()
    with pytest.MonkeyPatch.context() as off:
        for kind in ("REPORT_DAILY", "REPORT_WEEKLY", "REPORT_MONTHLY", "SNAPSHOT"):
            off.setenv(f"INCIDENT_OPS_{kind}_DEADLINE_MINUTES", "0")
        _sync(REPORTS_FILE)
        _sync(SNAPSHOT_FILE)


def _scheduled_run(dag_id: str, logical_date: datetime | None, run_id: str) -> Any:
    """The run the scheduler creates (or a person's, without a logical date)."""
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    dag = SerializedDagModel.get_dag(dag_id)
    assert dag is not None
    when = logical_date or datetime.now(UTC)
    return dag.create_dagrun(
        run_id=run_id, logical_date=logical_date,
        data_interval=(when, when) if logical_date else None, run_after=when,
        run_type=DagRunType.SCHEDULED if logical_date else DagRunType.MANUAL,
        triggered_by=DagRunTriggeredByType.TIMETABLE if logical_date
        else DagRunTriggeredByType.TEST, state=DagRunState.QUEUED)


def _deadlines(dagrun_id: int) -> list[Any]:
    from airflow.models.deadline import Deadline
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(select(Deadline).where(Deadline.dagrun_id == dagrun_id)).all()
        session.expunge_all()
        return list(rows)


def _miss_and_call_back(dagrun_id: int) -> list[Any]:
    """The scheduler's pass over missed deadlines, then the triggerer's callback run."""
    from airflow.models.deadline import Deadline
    from airflow.triggers.callback import CallbackTrigger
    from airflow.utils.session import create_session
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    with create_session() as session:
        missed = session.scalars(
            select(Deadline).where(Deadline.deadline_time < datetime.now(UTC))
            .where(~Deadline.missed).where(Deadline.dagrun_id == dagrun_id)
            .options(selectinload(Deadline.callback), selectinload(Deadline.dagrun))).all()
        assert len(missed) == 1, missed
        missed[0].handle_miss(session)
        data = dict(missed[0].callback.data)

    async def trigger() -> list[Any]:
        return [event async for event in CallbackTrigger(
            data["path"], dict(data["kwargs"])).run()]

    # As the triggerer does, on a loop of its own: on a thread, because this worker's main
    # thread may already run Playwright's loop (after a browser test), where asyncio.run()
    # refuses.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, trigger()).result()


def test_a_daily_report_not_delivered_by_its_hour_reaches_on_call(deadlines_on):
    run = _scheduled_run("incident_report_daily", SCHEDULED,
                         "scheduled__2026-12-06T23:30:00+00:00")
    [deadline] = _deadlines(run.id)
    assert deadline.deadline_time == SCHEDULED + timedelta(minutes=60)  # 08:30 in Shanghai
    print(f"\ndaily report run scheduled {SCHEDULED:%H:%M} UTC: deadline "
          f"{deadline.deadline_time:%H:%M} UTC")

    events = _miss_and_call_back(run.id)
    assert [e.payload["state"] for e in events] == ["running", "success"], events
    [mail] = deadlines_on.wait_for(1, to=ONCALL)
    assert str(mail["Subject"]) == ("[incident-ops] 超时 DEADLINE: incident_report_daily "
                                    "has not succeeded for 60 min")
    assert "still not finished" in mail.get_body(("plain",)).get_content()


def test_the_other_reports_and_the_snapshot_get_their_deadline_from_their_scheduled_time(
        deadlines_on):
    # the defaults; a setting of the environment: tests/dags/test_dagbag.py
    expected = {"incident_report_weekly": 120, "incident_report_monthly": 180,
                "incident_queue_snapshot": 30}
    for dag_id, minutes in expected.items():
        run = _scheduled_run(dag_id, SCHEDULED, f"scheduled__{dag_id}_{minutes}")
        [deadline] = _deadlines(run.id)
        assert deadline.deadline_time == SCHEDULED + timedelta(minutes=minutes), dag_id
    # A person's run without a logical date: Airflow skips the deadline (they are watching).
    manual = _scheduled_run("incident_queue_snapshot", None, "manual__snapshot_no_date")
    assert _deadlines(manual.id) == []
