"""One emergency per incident (issue 24) on a real Airflow: API server, scheduler, workers,
against this session's desk, SMTP and SMS receivers.

The incident's first emergency is running. A second trigger over REST (the call the UI's
form makes) is answered 409 naming and linking it, and no run is made; one made with the CLI
(``airflow dags trigger`` writes the run to the database, past the API server) fails its
first task, and nobody hears of it: one start mail, one start SMS per team phone, one start
on the incident. A trigger with ``start_anyway`` and a reason starts a separate emergency and
the reason is on the incident. Both are then aborted the way the README says.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid
from typing import Any
from urllib.parse import quote

import pytest
import requests

from incident_ops.model import TicketDraft

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAG = "emergency_response"
HQ = "noc@group-hq.example.cn"
START = "【应急启动】"
REASON = "同一事件单上另一起独立故障：计费接口中断 / a separate billing interface outage"


@pytest.fixture
def incident(airflow_server, desk_url) -> str:
    from incident_ops.airflow.provider.desk_hook import ServiceDeskHook

    tag = uuid.uuid4().hex[:8]
    with ServiceDeskHook() as hook:
        return hook.get_desk().create(TicketDraft(
            queue="Incidents", subject=f"[{tag}] CRM 无法登录", description="e2e one emergency",
            status="assigned-l2", priority="urgent", owner="liu.yang",
            requester="shop@example.cn",
            fields={"system": "crm", "impact": "high", "source": "phone", "category": "fault"},
            idempotency_key=f"e2e-once:{tag}"))


def runs(server: Any) -> dict[str, dict[str, Any]]:
    answer = server.api("admin", "GET", f"/api/v2/dags/{DAG}/dagRuns",
                        params={"limit": 100, "order_by": "-run_after"})
    answer.raise_for_status()
    return {r["dag_run_id"]: r for r in answer.json()["dag_runs"]}


def comments(desk_url: str, ticket_id: str) -> list[str]:
    """The texts on the incident (its description and comments), as the desk keeps them."""
    answer = requests.get(f"{desk_url}/REST/2.0/ticket/{ticket_id}/attachments",
                          auth=("root", "password"), timeout=30,
                          params={"fields": "Content,ContentType", "per_page": 100})
    answer.raise_for_status()
    texts = []
    for item in answer.json()["items"]:
        if not str(item.get("ContentType", "")).startswith("text/plain"):
            continue
        content = str(item.get("Content") or "")
        try:  # REST2 may hand content over base64-encoded
            content = base64.b64decode(content, validate=True).decode("utf-8")
        except ValueError:
            pass
        texts.append(content)
    return texts


def validate_log(server: Any, run_id: str) -> str:
    logs = list((server.home / "logs").rglob("*"))
    found = [p for p in logs if p.is_file() and "task_id=validate" in str(p)
             and f"run_id={run_id}" in str(p)]
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in found)


def test_a_second_emergency_for_a_running_incident_is_refused_unless_started_anyway(
        airflow_server, incident, desk_url, mailbox, sms_receiver):
    server = airflow_server
    conf = {"ticket_id": incident, "system": "crm", "impact": "high",
            "symptoms": "CRM 登录报错 ORA-12541，营业厅无法受理业务", "reporter": "li.na"}
    first = server.trigger(DAG, conf)
    link = f"{server.url}/dags/{DAG}/runs/{quote(first, safe='')}"

    # REST (and the form, the same call): refused before a run exists, naming the first.
    before = set(runs(server))
    again = server.api("admin", "POST", f"/api/v2/dags/{DAG}/dagRuns",
                       json={"logical_date": None, "conf": conf})
    assert again.status_code == 409, again.text
    detail = again.json()["detail"]
    assert first in detail and link in detail and "start_anyway" in detail
    no_reason = server.api("admin", "POST", f"/api/v2/dags/{DAG}/dagRuns",
                           json={"logical_date": None, "conf": {**conf, "start_anyway": True}})
    assert no_reason.status_code == 400 and "start_anyway_reason" in no_reason.text
    assert set(runs(server)) == before

    # CLI: the run is made (past the API server) and fails in its first task.
    cli = subprocess.run([sys.executable, "-m", "airflow", "dags", "trigger", DAG, "--conf",
                          json.dumps(conf, ensure_ascii=False)], env=server.env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert cli.returncode == 0, cli.stderr[-2000:]
    [second] = server.wait(lambda: [r for r in runs(server) if r not in before], "the CLI run",
                           30)
    server.wait(lambda: server.run_state(DAG, second) == "failed", "the CLI run to fail", 300)
    states = server.task_states(DAG, second)
    assert states["validate"] == "failed" and states["notify_start"] == "upstream_failed"
    refused = validate_log(server, second)
    assert first in refused and link in refused

    # The first goes on alone: one start mail to the group HQ, one start SMS per team phone.
    server.wait(lambda: server.task_states(DAG, first).get("notify_start") == "success",
                "the first emergency's start", 300)
    assert len(mailbox.find(to=HQ, subject_contains=f"{START}#{incident}")) == 1
    sms = [r.json for r in sms_receiver.delivered
           if str(r.json["text"]).startswith(START) and f"#{incident}" in str(r.json["text"])]
    phones = [p for r in sms for p in (r["to"] if isinstance(r["to"], list) else [r["to"]])]
    assert phones and len(phones) == len(set(phones)), sms
    assert sum("[101.1]" in c for c in comments(desk_url, incident)) == 1

    # Start anyway, with a reason: a separate emergency, its reason on the incident.
    third = server.trigger(DAG, {**conf, "start_anyway": True, "start_anyway_reason": REASON})
    server.wait(lambda: server.task_states(DAG, third).get("notify_start") == "success",
                "the separate emergency's start", 300)
    noted = [c for c in comments(desk_url, incident) if REASON in c]
    assert len(noted) == 1 and first in noted[0] and third in noted[0]
    started = mailbox.find(to=HQ, subject_contains=f"{START}#{incident}")
    assert len(started) == 2

    # Abort both as the README says: mark the run failed.
    for run_id in (first, third):
        server.api("admin", "PATCH", f"/api/v2/dags/{DAG}/dagRuns/{quote(run_id, safe='')}",
                   json={"state": "failed", "note": "e2e: aborted"}).raise_for_status()
        assert server.run_state(DAG, run_id) == "failed"
