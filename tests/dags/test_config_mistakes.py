"""A configuration mistake stops a pipeline at its first task, naming file, key and line,
before anything touches the desk or the mailbox (issue 15)."""

from __future__ import annotations

import shutil

import pytest

from incident_ops.config import config_dir
from tests.dags.test_incident_closure import make
from tests.support.airflow_dags import run_dag, task_states

pytestmark = [pytest.mark.integration, pytest.mark.dags]


def test_a_quoted_false_stops_the_closure_before_it_closes_anything(env, tmp_path,
                                                                     monkeypatch):
    folder = tmp_path / "config"
    shutil.copytree(config_dir(), folder)
    closure = folder / "closure.yaml"
    text = closure.read_text(encoding="utf-8")
    closure.write_text(text.replace("close_without_answer: false",
                                    'close_without_answer: "false"'), encoding="utf-8")
    line = text[: text.index("close_without_answer: false")].count("\n") + 1
    monkeypatch.setenv("INCIDENT_OPS_CONFIG_DIR", str(folder))
    monkeypatch.setenv("INCIDENT_OPS_ALERT_TO", "oncall@ops.example.cn")
    asked = make(env, "没人回答的用户工单", source="phone", category="request",
                 close_code="solved", resolver_role="helpdesk", requester="q@example.cn")
    run = run_dag("incident_closure")
    states = task_states(run)
    assert sorted(set(states.values())) == ["failed", "upstream_failed"], states
    assert next(iter(states.values())) == "failed"  # the first task, not retried
    # On-call is told, with the file, the line and the key.
    alert = env["mail"].one(to="oncall@ops.example.cn")
    body = alert.get_body(("plain",)).get_content()
    assert f"closure.yaml line {line}: confirmation.close_without_answer: expected true or " \
           'false, got "false" (quoted: a string)' in body, body
    ticket = env["desk"].get(asked)
    assert (ticket.status, ticket.confirmation) == ("resolved", None)
    assert not [m for m in env["mail"].messages if f"#{asked} " in str(m["Subject"])]
