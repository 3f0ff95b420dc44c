"""On-call alerting end to end with dag.test(): failed runs reach the on-call address once.

The runs are real (the desk, the SMTP server and the SMS receiver of the session); the DAG
callbacks run in-process as dag.test() runs them, reading and writing the same Variables
the DAG processor does in a deployment. A dead desk is a port nothing listens on.

The deadline path (the scheduler and the triggerer) is tested on the demo, in
``tests/demo/test_readme.py``: dag.test() has no scheduler to notice a missed deadline.
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest

from incident_ops.airflow.provider.senders import message_id
from incident_ops.notify.oncall import alert_key
from tests.dags.test_monitoring import make_open
from tests.support import free_port
from tests.support.airflow_dags import run_dag, task_states

pytestmark = [pytest.mark.integration, pytest.mark.dags]

ONCALL = "oncall@ops.example.cn"
DOMAIN = "ops.example.cn"  # of the test SMTP connection's from_email


@pytest.fixture
def oncall(env, monkeypatch):
    """On-call alerting switched on, with no memory of earlier tests' runs."""
    from airflow.models.variable import Variable

    monkeypatch.setenv("INCIDENT_OPS_ALERT_TO", ONCALL)
    monkeypatch.setenv("INCIDENT_OPS_AIRFLOW_URL", "http://airflow.example.cn:8080")
    for dag_id in ("urgent_incidents",):
        Variable.delete(f"incident_ops.oncall.{dag_id}")
    Variable.delete("incident_ops.oncall.silence")
    return env


def dead_desk(monkeypatch) -> None:
    conn = {"conn_type": "servicedesk", "host": f"http://127.0.0.1:{free_port()}",
            "login": "root", "password": "password",
            "extra": {"backend": "rt5", "timeout": 5}}
    monkeypatch.setenv("AIRFLOW_CONN_SERVICEDESK_DEFAULT", json.dumps(conn))


def alerts(env) -> list:
    return env["mail"].find(to=ONCALL)


def body(mail) -> str:
    return mail.get_body(("plain",)).get_content()


def test_failed_runs_reach_on_call_once_each_threaded_and_the_recovery_too(oncall, monkeypatch):
    good_desk = __import__("os").environ["AIRFLOW_CONN_SERVICEDESK_DEFAULT"]
    dead_desk(monkeypatch)
    first = run_dag("urgent_incidents")
    assert str(first.state) == "failed"
    assert task_states(first)["plan"] == "failed"
    [mail] = oncall["mail"].wait_for(1, to=ONCALL)
    assert str(mail["Subject"]) == "[incident-ops] 失败 FAILED: urgent_incidents (plan, report)"
    assert mail["Message-ID"] == message_id(alert_key("urgent_incidents", first.run_id,
                                                      "failed"), DOMAIN)
    run_link = ("http://airflow.example.cn:8080/dags/urgent_incidents/runs/"
                + quote(first.run_id, safe=""))
    assert f"Run: {run_link}" in body(mail)
    assert f"Failed task plan: {run_link}/tasks/plan" in body(mail)
    html = mail.get_body(("html",)).get_content()
    assert f'href="{run_link}/tasks/plan"' in html

    second = run_dag("urgent_incidents")
    assert str(second.state) == "failed"
    mails = oncall["mail"].wait_for(2, to=ONCALL)
    assert "2nd failed run in a row" in str(mails[1]["Subject"])
    assert mails[1]["In-Reply-To"] == mail["Message-ID"]  # one conversation per outage
    assert len({m["Message-ID"] for m in mails}) == 2

    monkeypatch.setenv("AIRFLOW_CONN_SERVICEDESK_DEFAULT", good_desk)
    back = run_dag("urgent_incidents")
    assert str(back.state) == "success"
    mails = oncall["mail"].wait_for(3, to=ONCALL)
    recovered = mails[2]
    assert str(recovered["Subject"]) == ("[incident-ops] 恢复 RECOVERED: urgent_incidents "
                                         "succeeded after 2 failed runs")
    assert recovered["In-Reply-To"] == mail["Message-ID"]
    assert run_dag("urgent_incidents").state == "success"
    assert len(alerts(oncall)) == 3  # a success after a success is news to nobody


def test_undelivered_messages_fail_the_run_and_the_alert_counts_them(oncall):
    tid = make_open(oncall, "短信网关全省下发失败", priority="urgent", impact="major",
                    system="sms-gw")
    oncall["sms"].fail_next(200)  # the gateway refuses every try of this run
    run = run_dag("urgent_incidents")
    states = task_states(run)
    assert (str(run.state), states["apply"], states["report"]) == ("failed", "failed", "failed")
    [mail] = oncall["mail"].wait_for(1, to=ONCALL)
    assert str(mail["Subject"]) == "[incident-ops] 失败 FAILED: urgent_incidents (apply, report)"
    text = body(mail)
    assert re.search(rf"undelivered messages: 1 \(.*#{tid}\b", text), text
    assert "findings (bad input): 0" in text
    page = re.search(r"Plan page: (\S+)", text)
    assert page and page.group(1).startswith(
        "http://airflow.example.cn:8080/incident-ops/plans/urgent_incidents/"), text
    # The mail to the incident manager went out; only the SMS is owed.
    assert oncall["mail"].find(subject_contains=f"#{tid} ")


def test_a_silence_holds_alerts_back_until_it_ends(oncall, monkeypatch):
    from airflow.models.variable import Variable

    dead_desk(monkeypatch)
    Variable.set("incident_ops.oncall.silence", json.dumps(
        {"until": "2999-01-01T00:00:00+08:00", "dags": ["urgent_incidents"],
         "reason": "desk maintenance"}))
    assert str(run_dag("urgent_incidents").state) == "failed"
    assert alerts(oncall) == []
    Variable.set("incident_ops.oncall.silence",
                 json.dumps({"until": "2000-01-01T00:00:00+08:00"}))  # over
    assert str(run_dag("urgent_incidents").state) == "failed"
    [mail] = oncall["mail"].wait_for(1, to=ONCALL)
    assert "2nd failed run in a row" in str(mail["Subject"])  # the silenced run counted


def test_an_unreadable_silence_does_not_silence(oncall, monkeypatch):
    from airflow.models.variable import Variable

    dead_desk(monkeypatch)
    Variable.set("incident_ops.oncall.silence", '{"until": "tomorrow"}')
    assert str(run_dag("urgent_incidents").state) == "failed"
    oncall["mail"].wait_for(1, to=ONCALL)


def test_a_failure_told_once_is_not_told_again_when_its_callback_runs_again(oncall, monkeypatch):
    from types import SimpleNamespace

    from incident_ops.airflow.alerting import on_run_failed

    dead_desk(monkeypatch)
    run = run_dag("urgent_incidents")
    oncall["mail"].wait_for(1, to=ONCALL)
    again = SimpleNamespace(dag_id="urgent_incidents", run_id=run.run_id,
                            start_date=run.start_date, queued_at=None)
    on_run_failed({"dag_run": again, "reason": "task_failure"})  # a replayed callback
    assert len(alerts(oncall)) == 1
