"""The fault matrix at real size, continued: the desk outages (a separate file so that
``--dist loadfile`` puts these two long cases and the other two on different workers; the
scenario, the control and the comparison are ``test_exactly_once_at_size``'s)."""

from __future__ import annotations

import pytest

from tests.dags import test_exactly_once_at_size as at_size
from tests.dags.test_exactly_once_at_size import (
    _desk_through_proxy,
    _outage_after,
    assert_same,
    build,
    case_state,
)
from tests.support.airflow_dags import run_dag, task_states

pytestmark = [pytest.mark.integration, pytest.mark.dags]

# The same fixtures (module scope: its own desk; the control is shared across workers).
sized, control, env = at_size.sized, at_size.control, at_size.env
embedded_desk, desk_url = at_size.embedded_desk, at_size.desk_url  # a desk of its own


def _closure_through_outage(env, monkeypatch, *, whole_run: bool):
    """The sized case built, then one closure run whose desk goes down from the 3rd write
    (for the rest of the run when ``whole_run``, else for one attempt of apply)."""
    ids = build(env["desk"], env["embedded"])
    proxy = _desk_through_proxy(env, monkeypatch)
    try:
        _outage_after(monkeypatch, proxy, writes=3, whole_run=whole_run)
        first = run_dag("incident_closure")
    finally:
        proxy.__exit__(None, None, None)
    return ids, first


def test_a_desk_outage_mid_apply_is_ridden_out_by_airflows_retry_of_apply(
        env, control, monkeypatch):
    ids, first = _closure_through_outage(env, monkeypatch, whole_run=False)
    assert str(first.state) == "success", task_states(first)
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        apply = session.query(TaskInstance).filter_by(
            dag_id=first.dag_id, run_id=first.run_id, task_id="apply").one()
        assert apply.try_number >= 2  # the first attempt failed with the desk down
    run_dag("incident_closure")
    assert_same(case_state(env, ids), control)


def test_a_desk_down_for_the_rest_of_the_run_turns_it_red_and_the_next_runs_finish(
        env, control, monkeypatch):
    ids, first = _closure_through_outage(env, monkeypatch, whole_run=True)
    assert str(first.state) == "failed", task_states(first)
    assert task_states(first)["apply"] == "failed"
    monkeypatch.undo()  # the desk is back, reached directly
    reruns = [run_dag("incident_closure") for _ in range(2)]
    assert all(str(r.state) == "success" for r in reruns), [task_states(r) for r in reruns]
    assert_same(case_state(env, ids), control)

