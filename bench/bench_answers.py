"""Benchmark: the requester's answer endpoint under 200 concurrent answers (issue 19).

    PYTHONPATH=include .venv/bin/python bench/bench_answers.py [--tickets 200]
        [--server-workers 2] [--clicks 2]

On a private embedded desk (its own workdir under /tmp and a free port, never the demo's):

1. seeds ``--tickets`` user-raised resolved tickets waiting for their requester's answer
   (``Confirmation: pending``, asked now), with the embedded desk's Perl loader;
2. serves the plugin's answer routes (``answer_pages.register``, the code the API server
   mounts) with uvicorn and ``--server-workers`` processes, like an API server with several
   workers, the desk and the link secret as Airflow connections in the environment;
3. fires every answer at once: each ticket's link (half "fixed", half "not fixed") is POSTed
   ``--clicks`` times concurrently (a requester double-clicking, a mail client and a
   browser), and, for one ticket in ten, the *other* answer's link too, all from one pool
   of threads (as many as requests);
4. reads the desk back: per ticket the recorded answer and the number of answer comments.

Printed: wall time, answers recorded per second, latency p50/p95/max, pages by status, and
**lost** (a ticket whose recorded answer is not its first link's, or none) and **doubled**
(a ticket with more than one answer comment, or more than one "recorded" page). Numbers are
printed, never asserted; the goal (issue 19): 0 lost and 0 doubled.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "include"))
sys.path.insert(0, str(HERE))

from _common import free_port, rt_time, seed  # noqa: E402

from incident_ops.embedded_desk import EmbeddedDesk  # noqa: E402
from incident_ops.policy.answers import claims_for, sign  # noqa: E402

MARK = "[Requester confirmation 100.7.2]"


def records(tag: str, count: int, asked: datetime) -> list[dict[str, Any]]:
    out = []
    for n in range(count):
        out.append({
            "key": f"{tag}-{n}", "queue": "Incidents", "subject": f"[{tag}] 打印机 {n}",
            "description": "bench", "priority": 50, "created": rt_time(asked - timedelta(hours=2)),
            "creator": "root", "status": "new", "requestor": f"req{n}@example.cn",
            "cf": {"Source": "phone", "Category": "request", "System": "crm",
                   "Impact": "low", "Dispatched By Help Desk": "yes",
                   "Configuration Item": f"{tag}-ci-{n}"},
            "member_of": None, "refers_to": [],
            "events": [{"at": rt_time(asked), "actor": "li.na", "status": "resolved",
                        "owner": "li.na", "comment": None,
                        "cf": {"Resolver Role": "l1", "Handler Tier": "l1",
                               "Solution": "重装驱动 reinstalled", "Close Code": "solved",
                               "Completed At": rt_time(asked), "Confirmation": "pending",
                               "Confirmation Asked At": rt_time(asked)}}],
        })
    return out


APP = '''
from fastapi import FastAPI
from incident_ops.airflow.web import answer_pages

def app():
    a = FastAPI()
    answer_pages.register(a)
    return a
'''


def serve(desk: EmbeddedDesk, secret: str, workers: int, workdir: Path) -> tuple[Any, str]:
    (workdir / "bench_answer_app.py").write_text(APP, encoding="utf-8")
    port = free_port()
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(HERE.parent / "include"), str(workdir)]),
           "AIRFLOW_CONN_SERVICEDESK_DEFAULT": json.dumps({
               "conn_type": "servicedesk", "host": desk.url, "login": desk.user,
               "password": desk.password, "extra": {"backend": "rt5", "timeout": 60}}),
           "AIRFLOW_CONN_INCIDENT_OPS_ANSWERS": json.dumps({
               "conn_type": "generic", "password": secret}),
           "AIRFLOW_HOME": str(workdir / "airflow")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "bench_answer_app:app", "--host",
         "127.0.0.1", "--port", str(port), "--workers", str(workers), "--log-level",
         "warning"], env=env, cwd=workdir, stdout=(workdir / "uvicorn.log").open("wb"),
        stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(f"{url}/answer/x.y", timeout=5)
            return proc, url
        except requests.ConnectionError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"uvicorn did not start:\n{(workdir / 'uvicorn.log').read_text()[-2000:]}")


def post(url: str) -> tuple[int, float, str]:
    started = time.perf_counter()
    response = requests.post(url, data={"comment": "bench"}, timeout=300)
    state = "recorded" if "answer is recorded" in response.text else "refused"
    return response.status_code, time.perf_counter() - started, state


def read_back(desk: EmbeddedDesk, ids: list[int]) -> dict[int, tuple[str | None, int]]:
    """Per ticket: the recorded confirmation and the number of answer comments."""
    session = requests.Session()
    session.auth = (desk.user, desk.password)
    out = {}
    for tid in ids:
        ticket = session.get(f"{desk.url}/REST/2.0/ticket/{tid}", timeout=60).json()
        value = next((f["values"][0] if f["values"] else None
                      for f in ticket.get("CustomFields", []) if f["name"] == "Confirmation"),
                     None)
        page = session.get(f"{desk.url}/REST/2.0/ticket/{tid}/history", timeout=60, params={
            "per_page": 100, "fields": "Type,Content"}).json()
        comments = 0
        for txn in page.get("items", []):
            if txn.get("Type") != "Comment":
                continue
            detail = session.get(txn["_url"] + "/attachments", timeout=60, params={
                "fields": "Content", "per_page": 5}).json()
            if any(MARK in (a.get("Content") or "") for a in detail.get("items", [])):
                comments += 1
        out[tid] = (value, comments)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=200)
    parser.add_argument("--clicks", type=int, default=2, help="POSTs of each link at once")
    parser.add_argument("--server-workers", type=int, default=2)
    parser.add_argument("--desk-workers", type=int, default=4)
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="bench-answers-", dir="/tmp"))
    desk = EmbeddedDesk(workdir / "desk", port=free_port(), workers=args.desk_workers)
    desk.provision()
    desk.start(stop_with_parent=True)
    server = None
    try:
        tag, asked = uuid.uuid4().hex[:6], datetime.now(UTC).replace(microsecond=0)
        seconds, ids = seed(desk, records(tag, args.tickets, asked))
        print(f"desk {desk.url}: {len(ids)} tickets waiting for an answer, seeded in "
              f"{seconds:.1f} s", flush=True)
        secret = uuid.uuid4().hex
        server, url = serve(desk, secret, args.server_workers, workdir)
        intended: dict[int, str] = {}
        urls: list[str] = []
        for n, tid in enumerate(sorted(ids.values())):
            fixed, not_fixed = (sign(secret, c) for c in claims_for(
                str(tid), asked, timedelta(days=14)))
            first, other = (fixed, not_fixed) if n % 2 else (not_fixed, fixed)
            intended[tid] = "confirmed" if n % 2 else "rejected"
            urls += [f"{url}/answer/{first}"] * args.clicks
            if n % 10 == 0:
                urls.append(f"{url}/answer/{other}")
        # The other answer's link races the first: whichever the desk takes first wins, and
        # the bench counts a ticket lost only when it holds no answer at all.
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=len(urls)) as pool:
            results = list(pool.map(post, urls))
        wall = time.perf_counter() - started
        latencies = sorted(r[1] for r in results)
        statuses = Counter(r[0] for r in results)
        recorded = Counter(r[2] for r in results)["recorded"]
        back = read_back(desk, sorted(ids.values()))
        lost = [t for t, (value, _) in back.items()
                if value not in ("confirmed", "rejected")]
        wrong = [t for t, (value, _) in back.items() if value != intended[t]]
        doubled = [t for t, (_, n) in back.items() if n > 1]
        print(f"requests: {len(urls)} at once ({args.tickets} tickets x {args.clicks} clicks "
              f"+ {len(urls) - args.tickets * args.clicks} other-answer links), "
              f"{args.server_workers} server workers")
        print(f"wall: {wall:.2f} s; answers recorded: {recorded} "
              f"({recorded / wall:.1f}/s); pages by status: {dict(sorted(statuses.items()))}")
        print(f"latency: p50 {statistics.median(latencies):.2f} s, "
              f"p95 {latencies[int(len(latencies) * 0.95) - 1]:.2f} s, "
              f"max {latencies[-1]:.2f} s")
        print(f"lost: {len(lost)} {lost[:10]}; doubled: {len(doubled)} {doubled[:10]}; "
              f"recorded pages - tickets: {recorded - args.tickets}; "
              f"other answer won the race: {len(wrong)}")
        return 0
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        desk.stop()


if __name__ == "__main__":
    sys.exit(main())
