"""What one Incident ops view request costs with 30 days of plan reports, on a local store
and on S3 (a moto server on loopback): the overview (``recent_runs``) and a ticket's trail
(``ticket_trail``) read the day indexes; "every report" is what the view did before (list
everything, read up to 3,000 reports).

    PYTHONPATH=include:. .venv/bin/python bench/bench_view.py [runs_per_day]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from incident_ops.artefacts import ArtefactStore, LocalStore, join, write_json
from incident_ops.reports import trail

PIPELINES = ("incident_closure", "urgent_incidents", "incident_queue_monitor")


def fill(store: ArtefactStore, per_day: int, days: int = 30) -> int:
    start = datetime(2026, 11, 6, tzinfo=UTC)
    count = 0
    for pipeline in PIPELINES:
        for d in range(days):
            day = start + timedelta(days=d)
            runs = []
            for n in range(per_day):
                at = day + timedelta(minutes=n * 1440 // per_day)
                key = f"{pipeline}/{day:%Y-%m-%d}/run_{at:%H%M}.json"
                doc: dict[str, Any] = {
                    "pipeline": pipeline, "run_id": f"scheduled__{at.isoformat()}",
                    "generated": at.isoformat(), "dry_run": False, "findings": [],
                    "waiting": {}, "carried_over": [], "undelivered": [],
                    "outcomes": [{"ticket_id": str(1000 + (n * 7 + k) % 500), "kind": "notify",
                                  "step": "100.8", "rule": "due.warn", "reason": "r",
                                  "key": f"k{n}-{k}", "outcome": "done", "message": "",
                                  "created_id": None, "undelivered": [], "at": at.isoformat()}
                                 for k in range(5)],
                    "outcome_counts": {"done": 5}}
                write_json(store, key, doc)
                runs.append(trail._summary(key, doc))
                count += 1
            write_json(store, join(trail.INDEX, pipeline, f"{day:%Y-%m-%d}.json"),
                       {"runs": runs}, indent=None)
    return count


def timed(what: str, fn: Any, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    print(f"  {what:<38} {best * 1000:8.1f} ms")
    return best


def every_report(store: ArtefactStore) -> None:
    keys = [k for k in store.keys("") if k.endswith(".json") and not k.startswith("_")]
    for key in keys[-trail.MAX_FILES:]:
        json.loads(store.read_bytes(key))


def measure(name: str, store: ArtefactStore, per_day: int) -> None:
    t = time.perf_counter()
    n = fill(store, per_day)
    print(f"{name}: {n} plan reports over 30 days written in {time.perf_counter() - t:.1f} s")
    timed("overview (recent_runs, indexes)", lambda: trail.recent_runs(store))
    timed("ticket trail (ticket_trail, indexes)", lambda: trail.ticket_trail(store, "1042"))
    timed("before: list + read every report", lambda: every_report(store), repeat=1)


def main() -> None:
    per_day = int(sys.argv[1]) if len(sys.argv) > 1 else 48
    with tempfile.TemporaryDirectory() as folder:
        measure("local folder (LocalStore)", LocalStore(Path(folder)), per_day)
    from airflow.sdk import ObjectStoragePath
    from moto.server import ThreadedMotoServer

    from incident_ops.airflow.object_store import ObjectStore

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ["AIRFLOW_CONN_BENCH_S3"] = json.dumps({
        "conn_type": "aws", "login": "test", "password": "test",
        "extra": {"endpoint_url": f"http://{host}:{port}", "region_name": "us-east-1"}})
    try:
        import boto3

        boto3.client("s3", endpoint_url=f"http://{host}:{port}", aws_access_key_id="t",
                     aws_secret_access_key="t", region_name="us-east-1").create_bucket(
            Bucket="bench")
        store = ObjectStore(ObjectStoragePath("s3://bench/view", conn_id="bench_s3"))
        measure("S3 on moto (ObjectStoragePath)", store, per_day)
        with tempfile.TemporaryDirectory() as folder:
            local = ObjectStore(ObjectStoragePath(Path(folder).as_uri()))
            measure("file:// (ObjectStoragePath)", local, per_day)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
