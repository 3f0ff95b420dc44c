"""Benchmark: from a ticket becoming urgent to the SMS, desk events on vs the poll only
(issue 28).

    PYTHONPATH=include:. .venv/bin/python bench/bench_urgent_latency.py [--tickets 6]
        [--window 90] [--modes events,poll] [--poll-cron "* * * * *"]

For each mode, on loopback and private to the run: a redis-server, an embedded RT whose
desk-events scrip publishes to it, an SMTP server and an SMS receiver that stamps each
arrival, a real Airflow (scheduler, triggerer, DAG processor, API server) with
``urgent_incidents`` unpaused. ``--tickets`` tickets are filed at normal priority, then each
is made urgent through RT's API at a random moment of ``--window`` seconds.

Latency: RT's transaction time of the priority change (RT stores whole seconds: up to 1 s
early) to the first SMS about the ticket reaching the receiver. Mode ``events``: events on,
the cron every 5 minutes (the default); ``poll``: ``INCIDENT_OPS_URGENT_EVENTS=off`` with
``--poll-cron`` (every minute, the schedule before issue 28). Printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "include"), str(HERE.parent)]

from tests.support.airflow_server import AirflowServer  # noqa: E402
from tests.support.desk_events import (  # noqa: E402
    NORMAL_PRIORITY,
    create_ticket,
    events_desk,
    redis_server,
    rest,
    set_priority,
    urgent_dag_only,
)
from tests.support.mail import SmtpTestServer  # noqa: E402
from tests.support.sms import SmsReceiver  # noqa: E402

FROM = "incident-ops@ops.example.cn"


class StampingReceiver(SmsReceiver):
    """The tests' SMS receiver, noting when each delivered message arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: list[tuple[float, str]] = []

    def _record(self, request: Any) -> None:
        if request.delivered:
            self.arrived.append((time.time(), request.body.decode("utf-8", "replace")))
        super()._record(request)


def priority_time(rest_url: str, tid: str) -> float:
    """When RT recorded the ticket's change to urgent (epoch seconds, whole seconds)."""
    items = rest(rest_url, "GET", f"/ticket/{tid}/history",
                 params={"fields": "Type,Field,Created", "per_page": 100})["items"]
    changed = [h for h in items if h.get("Type") == "Set" and h.get("Field") == "Priority"]
    return datetime.fromisoformat(changed[-1]["Created"].replace("Z", "+00:00")).timestamp()


def run_mode(mode: str, args: argparse.Namespace, root: Path) -> list[float]:
    rng = random.Random(args.seed)
    with redis_server() as redis, events_desk(root / f"desk-{mode}", redis.port) as desk, \
            SmtpTestServer() as smtp, StampingReceiver() as sms:
        env = {
            "AIRFLOW_CONN_SERVICEDESK_DEFAULT": json.dumps({
                "conn_type": "servicedesk", "host": desk.url, "login": desk.user,
                "password": desk.password, "extra": {"backend": "rt5", "timeout": 30}}),
            "AIRFLOW_CONN_DESK_EVENTS_DEFAULT": json.dumps({
                "conn_type": "redis", "host": "127.0.0.1", "port": redis.port}),
            "AIRFLOW_CONN_SMTP_DEFAULT": smtp.connection_uri(FROM),
            "AIRFLOW_CONN_SMS_DEFAULT": sms.connection_json(),
            "INCIDENT_OPS_URGENT_EVENTS": "on" if mode == "events" else "off",
            "INCIDENT_OPS_URGENT_SCHEDULE": "*/5 * * * *" if mode == "events" else args.poll_cron,
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        }
        started = time.monotonic()
        with AirflowServer(root / f"airflow-{mode}", {}, env=env,
                           dags_folder=urgent_dag_only(root / f"dags-{mode}")) as airflow:
            airflow.wait_dag("urgent_incidents", 180)
            if mode == "events":
                import redis as redis_py

                client = redis_py.Redis(host="127.0.0.1", port=redis.port)
                airflow.wait(lambda: client.pubsub_numsub("incident-ops.desk-events")[0][1],
                             "the triggerer to subscribe", 180)
            print(f"[{mode}] Airflow ready in {time.monotonic() - started:.0f} s", flush=True)
            tids = [create_ticket(desk.rest_url, f"延迟测量 {i}", priority=NORMAL_PRIORITY)
                    for i in range(args.tickets)]
            moments = sorted(rng.uniform(0, args.window) for _ in tids)
            t0 = time.monotonic()

            def escalate(tid: str, at: float) -> None:
                time.sleep(max(0.0, at - (time.monotonic() - t0)))
                set_priority(desk.rest_url, tid)

            threads = [threading.Thread(target=escalate, args=(t, m)) for t, m in
                       zip(tids, moments, strict=True)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline and not all(
                    any(f"#{t}" in body for _, body in sms.arrived) for t in tids):
                time.sleep(0.5)
            latencies = []
            for tid in tids:
                first = min((at for at, body in sms.arrived if f"#{tid}" in body), default=None)
                if first is None:
                    print(f"[{mode}] #{tid}: no SMS within 600 s", flush=True)
                    continue
                latencies.append(first - priority_time(desk.rest_url, tid))
            return latencies


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=6)
    parser.add_argument("--window", type=float, default=90.0)
    parser.add_argument("--modes", default="events,poll")
    parser.add_argument("--poll-cron", default="* * * * *")
    parser.add_argument("--seed", type=int, default=28)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-urgent-"))
    results = {}
    for mode in args.modes.split(","):
        results[mode] = run_mode(mode, args, root)
    print(f"\nurgent → SMS latency, {args.tickets} tickets made urgent at random moments of "
          f"{args.window:.0f} s (RT transaction time, whole seconds, to SMS arrival)")
    for mode, values in results.items():
        if not values:
            print(f"  {mode:<7} no SMS arrived")
            continue
        print(f"  {mode:<7} n={len(values)} p50 {statistics.median(values):5.1f} s  "
              f"p95 {quantile(values, 0.95):5.1f} s  max {max(values):5.1f} s  "
              f"min {min(values):5.1f} s")
    print(f"  (at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; workdirs under {root})")


if __name__ == "__main__":
    main()
