"""Urgent news in seconds (issue 28), end to end: a real RT whose scrip publishes to a real
redis-server, a real Airflow (scheduler, triggerer, DAG processor, API server), the SMS
receiver of the session.

- A ticket made urgent through RT's API is notified by a run the desk event started (the
  cron is set for New Year's Day, so nothing else could have);
- with no triggerer the cron alone notifies every urgent ticket, once;
- a flood of events makes a few runs, and every ticket is notified once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from incident_ops.embedded_desk import EmbeddedDesk
from tests.deploy.services import Redis
from tests.support.airflow_server import AirflowServer
from tests.support.desk_events import (
    create_ticket,
    events_desk,
    redis_binary,
    redis_server,
    rest,
    urgent_dag_only,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.skipif(not EmbeddedDesk.rt_installed(), reason="RT 5 not installed"),
              pytest.mark.skipif(redis_binary() is None, reason="redis-server not installed")]

DAG = "urgent_incidents"
NEW_YEAR = "0 0 1 1 *"  # never within a test


@pytest.fixture(scope="module")
def redis() -> Iterator[Redis]:
    with redis_server() as server:
        yield server


@pytest.fixture(scope="module")
def desk(redis: Redis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDesk]:
    with events_desk(tmp_path_factory.mktemp("events-desk"), redis.port) as desk:
        yield desk


def airflow_env(desk: EmbeddedDesk, redis: Redis, schedule: str) -> dict[str, str]:
    return {
        "AIRFLOW_CONN_SERVICEDESK_DEFAULT": json.dumps({
            "conn_type": "servicedesk", "host": desk.url, "login": desk.user,
            "password": desk.password, "extra": {"backend": "rt5", "timeout": 30}}),
        "AIRFLOW_CONN_DESK_EVENTS_DEFAULT": json.dumps({
            "conn_type": "redis", "host": "127.0.0.1", "port": redis.port}),
        "INCIDENT_OPS_URGENT_SCHEDULE": schedule,
        "INCIDENT_OPS_URGENT_EVENTS": "on",
    }


def start_airflow(home: Path, env: dict[str, str], components: tuple[str, ...]
                  ) -> AirflowServer:
    env = {**env, "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False"}
    server = AirflowServer(home, {}, env=env, components=components,
                           dags_folder=urgent_dag_only(home / "dags")).start()
    server.wait_dag(DAG)
    return server


@pytest.fixture(scope="module")
def airflow(desk, redis, smtp_server, sms_gateway, tmp_path_factory) -> Iterator[AirflowServer]:
    import redis as redis_py

    server = start_airflow(tmp_path_factory.mktemp("airflow-events"),
                           airflow_env(desk, redis, NEW_YEAR),
                           ("api-server", "scheduler", "dag-processor", "triggerer"))
    client = redis_py.Redis(host="127.0.0.1", port=redis.port)
    try:
        # Unpaused, the asset's watcher starts in the triggerer and subscribes.
        server.wait(lambda: client.pubsub_numsub("incident-ops.desk-events")[0][1] >= 1,
                    "the triggerer to subscribe to the desk's events", 180)
        yield server
    finally:
        server.stop()


def runs(server: AirflowServer) -> list[dict[str, Any]]:
    answer = server.api("admin", "GET", f"/api/v2/dags/{DAG}/dagRuns",
                        params={"limit": 100, "order_by": "run_after"})
    answer.raise_for_status()
    return list(answer.json()["dag_runs"])


def sms_about(sms: Any, tid: str) -> list[Any]:
    return [r for r in sms.delivered if f"#{tid}" in str(r.json)]


def notified_once(desk: EmbeddedDesk, sms: Any, tids: list[str]) -> dict[str, int]:
    """SMS per ticket, after checking none went twice to the same phone and that the desk
    recorded each notice once."""
    counts = {}
    for tid in tids:
        phones = [json.dumps(r.json.get("to")) for r in sms_about(sms, tid)]
        assert phones and len(phones) == len(set(phones)), (tid, phones)
        history = rest(desk.rest_url, "GET", f"/ticket/{tid}/history",
                       params={"fields": "Type", "per_page": 100})["items"]
        assert sum(1 for h in history if h.get("Type") == "Comment") == 1, tid
        counts[tid] = len(phones)
    return counts


def settled(server: AirflowServer) -> bool:
    found = runs(server)
    return bool(found) and all(r["state"] in ("success", "failed") for r in found)


# First: the module's Airflow with a triggerer (started by the tests after this one) must
# not be running yet, or its event runs would notify these tickets instead of the cron.
def test_with_no_triggerer_the_cron_notifies_every_urgent_ticket_once(desk, redis, smtp_server,
                                                                      sms_receiver,
                                                                      tmp_path_factory):
    server = start_airflow(tmp_path_factory.mktemp("airflow-poll"),
                           airflow_env(desk, redis, "* * * * *"),
                           ("api-server", "scheduler", "dag-processor"))
    try:
        tids = [create_ticket(desk.rest_url, f"无触发器 {i}") for i in range(3)]
        server.wait(lambda: all(sms_about(sms_receiver, t) for t in tids),
                    "SMS about every ticket from the cron's run", 240)
        first = {r["dag_run_id"] for r in runs(server)}
        # One more cron run after them: it must find nothing left to tell.
        server.wait(lambda: any(r["dag_run_id"] not in first and r["state"] == "success"
                                for r in runs(server)), "the next cron run", 150)
        assert {r["run_type"] for r in runs(server)} == {"scheduled"}
        notified_once(desk, sms_receiver, tids)
    finally:
        server.stop()


def test_an_urgent_ticket_is_notified_by_the_run_its_desk_event_started(airflow, desk,
                                                                        sms_receiver):
    tid = create_ticket(desk.rest_url, "计费批价中断")
    airflow.wait(lambda: sms_about(sms_receiver, tid), f"an SMS about #{tid}", 240)
    airflow.wait(lambda: settled(airflow), "the run to finish", 120)
    found = runs(airflow)
    assert {r["run_type"] for r in found} == {"asset_triggered"}, found
    assert all(r["state"] == "success" for r in found), found
    notified_once(desk, sms_receiver, [tid])


def test_a_flood_of_events_makes_a_few_runs_and_notifies_each_ticket_once(airflow, desk,
                                                                          sms_receiver):
    before = {r["dag_run_id"] for r in runs(airflow)}
    n = 12
    with ThreadPoolExecutor(6) as pool:
        tids = list(pool.map(lambda i: create_ticket(desk.rest_url, f"批量故障 {i}"), range(n)))
    airflow.wait(lambda: all(sms_about(sms_receiver, t) for t in tids),
                 f"SMS about all {n} tickets", 300)
    airflow.wait(lambda: settled(airflow), "the runs to finish", 120)
    new = [r for r in runs(airflow) if r["dag_run_id"] not in before]
    print(f"{n} urgent tickets, {len(new)} run(s)")
    assert {r["run_type"] for r in new} == {"asset_triggered"}
    assert 1 <= len(new) <= n // 3, new
    counts = notified_once(desk, sms_receiver, tids)
    assert len(set(counts.values())) == 1  # the same people for the same system
