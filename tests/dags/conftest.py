"""Shared by the pipeline DAG tests: real desk, mail and SMS receivers, a private reports dir."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.airflow_dags import ensure_pool, task_states


@pytest.fixture
def env(airflow_db, desk_url, mailbox, sms_receiver, tmp_path, monkeypatch) -> Iterator[dict]:
    """The desk (through the same hook the DAGs use), mailbox, SMS receiver and a unique tag
    for this test's ticket subjects."""
    monkeypatch.setenv("INCIDENT_OPS_REPORTS_DIR", str(tmp_path / "reports"))
    ensure_pool()
    from incident_ops.airflow.provider.desk_hook import ServiceDeskHook

    hook = ServiceDeskHook()
    yield {"desk": hook.get_desk(), "url": desk_url, "mail": mailbox, "sms": sms_receiver,
           "reports": tmp_path / "reports", "tag": uuid.uuid4().hex[:8]}
    hook.close()


def mails_about(env: dict[str, Any], ticket_id: str) -> list:
    """Mails whose subject names ticket #id (subjects say '#<id> ...')."""
    return [m for m in env["mail"].messages if f"#{ticket_id} " in str(m["Subject"])]


def succeeded(run: Any) -> None:
    states = task_states(run)
    assert set(states.values()) == {"success"}, states
