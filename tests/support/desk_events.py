"""Desk events on loopback (issue 28): a real redis-server, a desk whose scrip publishes to
it, a subscriber that records what arrives, and tickets made urgent through RT's own API.

    with events_desk(tmp_path) as (desk, redis):
        with Subscriber(redis.port) as heard:
            tid = create_urgent(desk)
            (event,) = heard.wait(lambda m: m["ticket"] == tid, 1)
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from incident_ops.desk.events import DEFAULT_CHANNEL
from incident_ops.desk.rt import schema
from incident_ops.embedded_desk import EmbeddedDesk
from incident_ops.embedded_desk.rtconfig import EVENTS_ENV
from tests.deploy.services import Redis
from tests.support import free_port

STAFF = ("zhang.wei", "password")
URGENT_PRIORITY = 90  # vocabulary.yaml: urgent rank
NORMAL_PRIORITY = 30


def redis_binary() -> str | None:
    return shutil.which("redis-server")


@contextmanager
def redis_server() -> Iterator[Redis]:
    server = Redis(redis_binary() or "redis-server")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def events_desk(workdir: Path, redis_port: int, channel: str = DEFAULT_CHANNEL
                ) -> Iterator[EmbeddedDesk]:
    """An embedded RT whose desk-events scrip publishes to 127.0.0.1:``redis_port``."""
    desk = EmbeddedDesk(workdir, port=free_port(), workers=2)
    before = {var: os.environ.get(var) for var in EVENTS_ENV.values()}
    os.environ[EVENTS_ENV["IncidentOpsEventsRedis"]] = f"127.0.0.1:{redis_port}"
    os.environ[EVENTS_ENV["IncidentOpsEventsChannel"]] = channel
    try:
        desk.start(stop_with_parent=True)  # RT reads its config (and so these) at start
    finally:
        for var, value in before.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
    try:
        yield desk
    finally:
        desk.stop()


class Subscriber:
    """Everything published on ``channel`` while it is open, decoded from JSON."""

    def __init__(self, port: int, channel: str = DEFAULT_CHANNEL) -> None:
        import redis

        self._pubsub = redis.Redis(host="127.0.0.1", port=port).pubsub()
        self._pubsub.subscribe(channel)
        self._pubsub.get_message(timeout=5)  # the subscription's confirmation
        self.messages: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)

    def _listen(self) -> None:
        while not self._stop.is_set():
            message = self._pubsub.get_message(timeout=0.2)
            if message and message["type"] == "message":
                with self._cond:
                    self.messages.append(json.loads(message["data"]))
                    self._cond.notify_all()

    def __enter__(self) -> Subscriber:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._pubsub.close()

    def wait(self, match: Callable[[dict[str, Any]], bool], count: int = 1,
             timeout: float = 30) -> list[dict[str, Any]]:
        """The messages ``match`` accepts once there are ``count`` of them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [m for m in self.messages if match(m)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"waited {timeout:.0f} s for {count} desk event(s); "
                                         f"heard {self.messages}")
                self._cond.wait(left)


def urgent_dag_only(folder: Path) -> Path:
    """A DAG folder with ``urgent_incidents`` alone: started unpaused
    (``AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False``), its asset is active from the
    first parse, so the triggerer subscribes without waiting for a re-parse (the test
    Airflow parses each file once an hour), and no other DAG loads the machine."""
    folder.mkdir(parents=True, exist_ok=True)
    dag = Path(__file__).resolve().parents[2] / "dags" / "urgent_incidents.py"
    shutil.copyfile(dag, folder / dag.name)
    return folder


def rest(desk_rest_url: str, method: str, path: str, **kwargs: Any) -> Any:
    answer = requests.request(method, desk_rest_url + path, auth=STAFF, timeout=60, **kwargs)
    answer.raise_for_status()
    return answer.json()


def create_ticket(desk_rest_url: str, subject: str, *, priority: int = URGENT_PRIORITY,
                  impact: str = "medium", **fields: str) -> str:
    """A ticket on the Incidents queue through RT's REST 2 API, as the help desk files it."""
    tag = uuid.uuid4().hex[:8]
    created = rest(desk_rest_url, "POST", "/ticket", json={
        "Queue": schema.INCIDENTS, "Subject": f"[{tag}] {subject}", "Content": subject,
        "Status": "assigned-l1", "Owner": "zhang.wei", "Requestor": "caller@example.cn",
        "Priority": priority,
        "CustomFields": {"Source": "phone", "Category": "fault", "System": "billing",
                         "Impact": impact, "Handler Tier": "l1", **fields}})
    return str(created["id"])


def set_priority(desk_rest_url: str, tid: str, priority: int = URGENT_PRIORITY) -> None:
    rest(desk_rest_url, "PUT", f"/ticket/{tid}", json={"Priority": priority})


def transaction_times(desk_rest_url: str, tid: str) -> list[tuple[str, str, str]]:
    """(type, field, created) of the ticket's history, oldest first (RT's UTC times)."""
    items = rest(desk_rest_url, "GET", f"/ticket/{tid}/history", params={
        "fields": "Type,Field,Created", "per_page": 100})["items"]
    return [(h.get("Type", ""), h.get("Field", ""), h.get("Created", "")) for h in items]
