"""The Incident ops view's data from Airflow's metadata DB: what the outboxes still owe."""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.dags]


def test_undelivered_messages_are_listed_from_every_outbox_and_a_broken_entry_is_skipped(
        airflow_db):
    from airflow.models.variable import Variable

    from incident_ops.airflow.web.ops_view import _outboxes

    owed = {"reopen:41": {"action": {"key": "reopen:41", "ticket_id": "41",
                                     "step": "100.7.3"},
                          "run_id": "manual__1", "queued_at": "2026-12-05T10:00:00+00:00",
                          "attempts": 2, "last_error": "451 try again later"},
            "broken": {"run_id": "x"}}
    Variable.set("incident_ops.outbox.incident_closure", json.dumps(owed))
    try:
        listed = _outboxes()
    finally:
        Variable.delete("incident_ops.outbox.incident_closure")
    # Only this test's scope: other tests of the same process may leave owed entries of
    # their own pipelines in the shared metadata DB.
    listed = [entry for entry in listed if entry["scope"] == "incident_closure"]
    assert listed == [{"scope": "incident_closure", "key": "reopen:41", "ticket_id": "41",
                       "step": "100.7.3", "run_id": "manual__1",
                       "queued_at": "2026-12-05T10:00:00+00:00", "attempts": 2,
                       "last_error": "451 try again later"}]
