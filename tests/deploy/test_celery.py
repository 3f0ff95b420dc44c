"""A distributed run without Docker: incident_closure on the CeleryExecutor, two workers.

What ``docker-compose.yml`` runs in containers, this test runs as processes on loopback,
from Debian's and PyPI's packages: PostgreSQL (metadata DB and Celery result backend),
Redis (Celery broker), ``airflow db migrate``, the ``servicedesk`` pool, then the API server
(whose execution API the workers' tasks talk to), the scheduler, the DAG processor and two
``airflow celery worker`` processes with distinct Celery node names, against this session's
embedded desk (``desk_url``), SMTP server and SMS receiver.

The test makes its own family of resolved monitoring alarms (a master and a chain of
duplicates), unpauses and triggers ``incident_closure`` from the CLI, waits for the run with a
deadline and checks the outcome in the desk: every ticket of the family closed with the
master's close code, the run id in each ticket's automation trail. Then it reads the task
instances from the metadata DB: all succeeded, each was queued to Celery (an external
executor id) and ran on one of the two workers.

Both workers run on this one machine, so their tasks would all report the same host name.
Each worker therefore gets its own ``[core] hostname_callable`` (a one-line module returning
``worker-a`` or ``worker-b``), which is what ``TaskInstance.hostname`` records, as distinct
container host names do under docker compose. Which worker takes which task is Celery's
choice, not ours: with one slot per worker and the tasks queued one after another they
usually alternate, but not always (one measured run gave five of six tasks to one worker).
So the test triggers two runs (six tasks) and, should one worker have taken them all,
triggers more, one at a time, up to six runs (18 tasks), then asserts that both workers
ran tasks. In the seven runs measured, the first two runs always settled it.

The second test is the cluster with no shared disk (issue 27): each component (API server,
scheduler, DAG processor, each worker) has a private reports folder of its own, as on its own
host, and the artefact store is an S3 bucket on a moto server in the test process (moto
speaks S3's wire protocol over HTTP and is a PyPI package; Ceph's radosgw needs a cluster to
start). Closure, urgent, the queue snapshot and the daily report run on the two workers; the
daily report's tasks hand their archive over through the bucket (a run whose tasks ran on
both workers is required, triggering again if Celery gave one worker all of them); the API
server serves the Plan page and the Incident ops view from the bucket over HTTP; the mailed
workbook is the one read back from the bucket; no component's folder holds a file. On code
that writes to the local folder, the daily report's ``send`` on one worker failed with "no
manifest.json; render first" (the render ran on the other).

Marked ``slow`` (about a minute here: 10-17 s to start the stack, 15-30 s for the runs,
~12 s to stop it); ``make test`` runs it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.services import (
    Postgres,
    Proc,
    Redis,
    ServiceError,
    apt_install,
    free_port,
    pg_bindir,
    tail,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.deploy]

REPO_ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = Path(sys.executable).with_name("airflow")
DAG_ID = "incident_closure"
WORKERS = ("worker-a", "worker-b")
RUNS = 2  # triggered at once
MAX_RUNS = 6  # if Celery gave every task to one worker, run again up to this many
BUCKET, PREFIX = "incident-ops", "cluster"  # the artefact store: s3://incident-ops/cluster


def _missing() -> str | None:
    """Why this machine cannot run the test, or None.

    ``make install`` (scripts/install-system.sh) installs PostgreSQL and Redis from Debian's
    packages; where it did not run, they are installed here if possible.
    """
    if pg_bindir() is None or shutil.which("redis-server") is None:
        why = apt_install("postgresql", "redis-server")
        if pg_bindir() is None or shutil.which("redis-server") is None:
            return f"PostgreSQL or Redis missing and not installable: {why}"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "runuser missing (util-linux): needed to run PostgreSQL as postgres"
    try:
        import airflow.providers.amazon  # noqa: F401
        import airflow.providers.celery  # noqa: F401
        import boto3  # noqa: F401
        import moto.server  # noqa: F401
        import psycopg2  # noqa: F401
        import s3fs  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed: pip install -r requirements.txt"
    return None


# ------------------------------------------------------------------------- the stack
class Stack:
    """Airflow on Celery: one environment, a CLI runner and the long-running components."""

    def __init__(self, root: Path, pg: Postgres, redis: Redis, s3_endpoint: str) -> None:
        self.root, self.pg, self.redis = root, pg, redis
        self.api_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.admin_password = secrets.token_urlsafe(12)
        (root / "passwords.json").write_text(json.dumps({"admin": self.admin_password}))
        self.procs: list[Proc] = []
        self.timings: dict[str, float] = {}
        self.s3: Any = None  # a boto3 client of the bucket's server
        home = root / "airflow-home"
        home.mkdir()
        identity = root / "identity"
        identity.mkdir()
        (identity / "incident_ops_test_worker.py").write_text(
            "import os\n\n\ndef hostname() -> str:\n"
            "    return os.environ['INCIDENT_OPS_TEST_WORKER']\n")
        self.identity_path = str(identity)
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN":
                pg.dsn().replace("postgresql://", "postgresql+psycopg2://"),
            "AIRFLOW__CELERY__BROKER_URL": redis.url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + pg.dsn(),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL":
                f"http://127.0.0.1:{self.api_port}/execution/",
            # Shared by every component, as .env provides them under docker compose.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            # Only the triggered runs: no scheduled run may slip in during the test.
            "INCIDENT_OPS_CLOSURE_SCHEDULE": "0 0 1 1 *",
            "INCIDENT_OPS_URGENT_SCHEDULE": "0 0 1 1 *",
            "INCIDENT_OPS_SNAPSHOT_SCHEDULE": "0 0 1 1 *",
            "INCIDENT_OPS_REPORT_DAILY_SCHEDULE": "0 0 1 1 *",
            # No shared disk: each component gets a private reports folder of its own
            # (``start``), and every artefact goes to the bucket, as on separate hosts.
            "INCIDENT_OPS_ARTEFACTS": f"s3://{BUCKET}/{PREFIX}",
            "INCIDENT_OPS_ARTEFACTS_CONN": "artefacts_s3",
            "AIRFLOW_CONN_ARTEFACTS_S3": json.dumps({
                "conn_type": "aws", "login": "test", "password": "test",
                "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"}}),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(root / "passwords.json"),
            "INCIDENT_OPS_RETRY_DELAY_SECONDS": "1",
            "PYTHONUNBUFFERED": "1",
        }

    # -- commands
    def cli(self, *args: str, timeout: float = 120) -> str:
        try:
            proc = subprocess.run([str(AIRFLOW), *args], env=self.env, capture_output=True,
                                  text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ServiceError(f"airflow {' '.join(args)}: no answer in {timeout} s") from exc
        if proc.returncode != 0:
            raise ServiceError(f"airflow {' '.join(args)} failed ({proc.returncode}):\n"
                               f"{(proc.stdout + proc.stderr)[-4000:]}")
        return proc.stdout

    def folder(self, name: str) -> Path:
        """The component's private reports folder (what a host's local disk would be)."""
        return self.root / "private" / name / "reports"

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> Proc:
        self.folder(name).mkdir(parents=True)
        proc = Proc(name, [str(AIRFLOW), *args], self.root / f"{name}.log",
                    env={**self.env, "INCIDENT_OPS_REPORTS_DIR": str(self.folder(name)),
                         **(env or {})}, cwd=self.root)
        self.procs.append(proc)
        return proc

    def start_worker(self, name: str) -> Proc:
        return self.start(
            name, "celery", "worker", "--celery-hostname", f"{name}@%h", "--concurrency", "1",
            "--without-mingle", "--without-gossip",
            env={
                "INCIDENT_OPS_TEST_WORKER": name,
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "incident_ops_test_worker.hostname",
                "PYTHONPATH": os.pathsep.join(
                    p for p in (self.identity_path, self.env.get("PYTHONPATH")) if p),
                # Each worker serves its task logs on its own port, as on its own host.
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            })

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """A REST call as the admin (a token from the API server's own login)."""
        import requests

        if not getattr(self, "_token", None):
            answer = requests.post(f"{self.api_url}/auth/token", timeout=30, json={
                "username": "admin", "password": self.admin_password})
            answer.raise_for_status()
            self._token = answer.json()["access_token"]
        headers = {"Authorization": f"Bearer {self._token}", **kwargs.pop("headers", {})}
        return requests.request(method, self.api_url + path, headers=headers, timeout=30,
                                **kwargs)

    def alive(self) -> None:
        for proc in self.procs:
            proc.check_alive()

    def stop(self) -> None:
        for proc in reversed(self.procs):  # workers first, the API server last
            proc.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ({p.log})\n{tail(p.log, 25)}" for p in self.procs)


@pytest.fixture(scope="module")
def stack(desk_url: str, smtp_server: Any, sms_gateway: Any,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    bindir = pg_bindir()
    assert bindir is not None
    pg, redis = Postgres(bindir), Redis(shutil.which("redis-server") or "redis-server")
    from moto.server import ThreadedMotoServer

    s3_server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    stack: Stack | None = None
    timings: dict[str, float] = {}  # seconds per phase, printed by the test
    try:
        t0 = time.monotonic()
        pg.start()
        redis.start()
        s3_server.start()
        host, port = s3_server.get_host_and_port()
        _s3(f"http://{host}:{port}").create_bucket(Bucket=BUCKET)
        timings["postgres+redis+s3"] = time.monotonic() - t0
        stack = Stack(tmp_path_factory.mktemp("celery"), pg, redis, f"http://{host}:{port}")
        stack.s3 = _s3(f"http://{host}:{port}")
        t0 = time.monotonic()
        stack.cli("db", "migrate", timeout=300)
        stack.cli("pools", "set", "servicedesk", "4", "Calls to the service desk")
        timings["migrate+pool"] = time.monotonic() - t0
        t0 = time.monotonic()
        stack.start("api-server", "api-server", "--host", "127.0.0.1", "--port",
                    str(stack.api_port), "--workers", "1")
        stack.start("scheduler", "scheduler")
        stack.start("dag-processor", "dag-processor")
        for name in WORKERS:
            stack.start_worker(name)
        wait_until(lambda: _http_ok(f"http://127.0.0.1:{stack.api_port}/api/v2/monitor/health"),
                   120, "API server", stack.alive, interval=0.5)
        for name in WORKERS:  # Celery prints "<node> ready." once it consumes the queue
            log = stack.root / f"{name}.log"
            wait_until(lambda log=log: "ready." in log.read_text(errors="replace"), 120,
                       f"Celery {name}", stack.alive, interval=0.5)
        wait_until(lambda: bool(pg.query("SELECT 1 FROM serialized_dag WHERE dag_id = %s",
                                         (DAG_ID,))),
                   120, f"{DAG_ID} parsed by the DAG processor", stack.alive, interval=0.5)
        timings["components ready"] = time.monotonic() - t0
        stack.timings = timings
        yield stack
    except ServiceError as exc:
        pytest.fail(f"{exc}\n{stack.logs() if stack else ''}")
    finally:
        if stack is not None:
            stack.stop()
        redis.stop()
        pg.stop()
        s3_server.stop()


def _s3(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test",
                        aws_secret_access_key="test", region_name="us-east-1")


def _http_ok(url: str) -> bool:
    import requests

    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


# ------------------------------------------------------------------------- the desk
def _desk(url: str) -> Any:
    from incident_ops.desk.rt.adapter import RequestTrackerDesk
    from incident_ops.desk.rt.client import RTClient

    return RequestTrackerDesk(RTClient(url, user="root", password="password",
                                       timeout=(10.0, 30.0)))


def _alarm_family(desk: Any, tag: str) -> list[str]:
    """A resolved monitoring alarm with a chain of duplicates, the last ones still open."""
    from incident_ops.model import TicketDraft

    def make(subject: str, status: str, **fields: Any) -> str:
        values: dict[str, Any] = {
            "source": "monitoring", "category": "alarm", "system": "billing",
            "impact": "medium", "resolver_role": "l2", "handler_tier": "l2",
            "solution": "重启计费进程 restarted", "close_code": "self-healed",
            "config_item": "bill-app-01", "dispatched_by_helpdesk": False,
            "completed_at": datetime.now(UTC).replace(microsecond=0),
        }
        values.update(fields)
        return str(desk.create(TicketDraft(
            queue="Incidents", subject=f"[{tag}] {subject}", description=subject,
            status=status, priority="high", owner="liu.yang",
            requester="requester@example.cn", fields=values,
            idempotency_key=f"celery-test:{tag}:{subject}")))

    chain = [make("告警风暴 主单 master", "resolved")]
    for i in range(3):
        dup = make(f"告警风暴 重复 duplicate {i}", "new" if i else "resolved",
                   close_code="solved", solution=None)
        desk.link_duplicate(dup, chain[-1])
        chain.append(dup)
    return chain


# ------------------------------------------------------------------------- the test
def test_closure_runs_on_two_celery_workers_and_closes_the_family(
        stack: Stack, desk_url: str) -> None:
    desk = _desk(desk_url)
    tag = uuid.uuid4().hex[:8]
    chain = _alarm_family(desk, tag)

    t0 = time.monotonic()
    stack.cli("dags", "unpause", DAG_ID)
    run_ids: list[str] = []

    def trigger_and_wait(count: int) -> None:
        batch = [f"celery-test-{tag}-{len(run_ids) + n}" for n in range(count)]
        for run_id in batch:
            stack.cli("dags", "trigger", DAG_ID, "--run-id", run_id)
        run_ids.extend(batch)

        def finished() -> bool:
            states = dict(stack.pg.query(
                "SELECT run_id, state FROM dag_run WHERE dag_id = %s AND run_id = ANY(%s)",
                (DAG_ID, batch)))
            if any(s == "failed" for s in states.values()):
                raise AssertionError(f"a run failed: {states}\n{stack.logs()}")
            return len(states) == len(batch) and set(states.values()) == {"success"}

        try:
            wait_until(finished, 150, f"runs {batch} of {DAG_ID}", stack.alive, interval=0.5)
        except ServiceError as exc:
            raise AssertionError(f"{exc}\n{stack.logs()}") from exc

    def task_instances() -> list[dict[str, Any]]:
        rows = stack.pg.query(
            "SELECT run_id, task_id, state, hostname, external_executor_id, queue "
            "FROM task_instance WHERE dag_id = %s AND run_id = ANY(%s) ORDER BY start_date",
            (DAG_ID, run_ids))
        return [dict(zip(("run_id", "task_id", "state", "hostname", "celery_id", "queue"),
                         r, strict=True)) for r in rows]

    trigger_and_wait(RUNS)
    # Which worker takes a task is Celery's choice: if one worker happened to take every
    # task so far, run again (one run at a time, a bounded number of times).
    while (len({ti["hostname"] for ti in task_instances()}) < len(WORKERS)
           and len(run_ids) < MAX_RUNS):
        trigger_and_wait(1)
    runs_s = time.monotonic() - t0

    # -- the desk: the first run closed the whole family with the master's code
    for tid in chain:
        ticket = desk.get(tid)
        assert (ticket.status, ticket.close_code) == ("closed", "self-healed"), tid
        assert run_ids[0] in (ticket.automation or ""), ticket.automation

    # -- the metadata DB: every task ran through Celery, on the two workers
    tis = task_instances()
    print(json.dumps({"timings_s": {**stack.timings, "runs": round(runs_s, 1)},
                      "runs": len(run_ids), "task_instances": tis}, indent=1, default=str))
    tasks = {ti["task_id"] for ti in tis}
    assert len(tis) == len(tasks) * len(run_ids), tis
    assert {"plan", "apply", "report"} <= tasks, tis
    assert {ti["state"] for ti in tis} == {"success"}, tis
    assert all(ti["celery_id"] for ti in tis), "a task did not go through Celery"
    hosts = {ti["hostname"] for ti in tis}
    assert hosts <= set(WORKERS), hosts
    assert hosts == set(WORKERS), f"all tasks of {len(run_ids)} runs ran on {hosts}: {tis}"
    # The workers' own logs agree: each Celery task id was received by the worker the
    # task instance names.
    received = {name: (stack.root / f"{name}.log").read_text(errors="replace")
                for name in WORKERS}
    for ti in tis:
        assert f"execute_workload[{ti['celery_id']}] received" in received[ti["hostname"]], ti


# ---------------------------------------------------------------- no shared disk (issue 27)
def _wait_runs(stack: Stack, runs: dict[str, str], deadline_s: float = 240) -> None:
    """Until every ``run_id -> dag_id`` has succeeded (a failed one fails the test)."""
    def finished() -> bool:
        states = dict(stack.pg.query(
            "SELECT run_id, state FROM dag_run WHERE run_id = ANY(%s)", (list(runs),)))
        if any(s == "failed" for s in states.values()):
            raise AssertionError(f"a run failed: {states}\n{stack.logs()}")
        return len(states) == len(runs) and set(states.values()) == {"success"}

    try:
        wait_until(finished, deadline_s, f"runs {sorted(runs)}", stack.alive, interval=0.5)
    except ServiceError as exc:
        raise AssertionError(f"{exc}\n{stack.logs()}") from exc


def _trigger(stack: Stack, dag_id: str, run_id: str) -> None:
    stack.api("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False}).raise_for_status()
    stack.api("POST", f"/api/v2/dags/{dag_id}/dagRuns",
              json={"dag_run_id": run_id, "logical_date": None}).raise_for_status()


def _objects(stack: Stack) -> list[str]:
    pages = stack.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX)
    return sorted(o["Key"].removeprefix(f"{PREFIX}/") for p in pages
                  for o in p.get("Contents", []))


def _body(stack: Stack, key: str) -> bytes:
    return bytes(stack.s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{key}")["Body"].read())


def test_a_cluster_with_no_shared_disk_keeps_every_artefact_in_the_bucket(
        stack: Stack, desk_url: str, smtp_server: Any) -> None:
    """Closure, urgent, the queue snapshot and the daily report on two Celery workers whose
    reports folders are private (as on two hosts), the API server with a folder of its own:
    every artefact is written to and read back from the S3 bucket, the daily report's tasks
    hand their archive over between workers through it, and the API server serves the Plan
    page and the Incident ops view from it."""
    import io

    import pandas as pd

    from incident_ops.model import TicketDraft

    desk, tag = _desk(desk_url), uuid.uuid4().hex[:8]
    urgent = str(desk.create(TicketDraft(
        queue="Incidents", subject=f"[{tag}] 全省计费中断 billing down", description="多主机测试",
        status="assigned-l1", priority="urgent", owner="zhang.wei",
        requester="caller@example.cn", idempotency_key=f"celery-test:{tag}:urgent",
        fields={"source": "phone", "category": "fault", "system": "billing",
                "impact": "major", "handler_tier": "l1"})))
    smtp_server.mailbox.clear()
    runs = {f"{dag_id}-{tag}": dag_id for dag_id in (
        DAG_ID, "urgent_incidents", "incident_queue_snapshot", "incident_report_daily")}
    for run_id, dag_id in runs.items():
        _trigger(stack, dag_id, run_id)
    _wait_runs(stack, runs)

    def report_hosts() -> dict[str, set[str]]:
        rows = stack.pg.query(
            "SELECT run_id, hostname FROM task_instance WHERE dag_id = %s",
            ("incident_report_daily",))
        hosts: dict[str, set[str]] = {}
        for run_id, host in rows:
            hosts.setdefault(run_id, set()).add(host)
        return hosts

    # The report's fetch, compute, render and send pass the archive on through the bucket:
    # the proof needs a run whose tasks did not all run on one worker (Celery's choice).
    extra = 0
    while not any(len(h) > 1 for h in report_hosts().values()) and extra < 4:
        extra += 1
        run_id = f"incident_report_daily-{tag}-{extra}"
        _trigger(stack, "incident_report_daily", run_id)
        _wait_runs(stack, {run_id: "incident_report_daily"})
    assert any(len(h) > 1 for h in report_hosts().values()), report_hosts()

    stored = _objects(stack)
    # -- the closure's plan (JSON + page) and its day's index, written by the workers
    closure_plans = [k for k in stored if k.startswith(f"{DAG_ID}/") and k.endswith(".json")]
    assert any(f"{DAG_ID}-{tag}" in json.loads(_body(stack, k)).get("run_id", "")
               for k in closure_plans), closure_plans
    assert any(k.startswith(f"_index/{DAG_ID}/") for k in stored), stored
    # -- the urgent ticket was told, once; the snapshot was mailed and marked sent
    subjects = [str(m["Subject"]) for m in smtp_server.mailbox.messages]
    assert sum(f"#{urgent} " in s for s in subjects) == 1, subjects
    assert any("Queue snapshot" in s for s in subjects), subjects
    # -- the daily report's workbook, read back from the bucket, is the one mailed
    workbooks = [k for k in stored if k.endswith("workbook.xlsx")]
    assert workbooks, stored
    kept = pd.read_excel(io.BytesIO(_body(stack, workbooks[-1])), sheet_name=None)
    mailed = [part for m in smtp_server.mailbox.messages for part in m.iter_attachments()
              if str(part.get_filename() or "").endswith(".xlsx")]
    assert mailed, subjects
    assert list(pd.read_excel(io.BytesIO(mailed[-1].get_content()), sheet_name=None)) == \
        list(kept)

    # -- the API server serves the Plan page and the view from the bucket, over HTTP
    [(link,)] = stack.pg.query(
        "SELECT value FROM xcom WHERE dag_id = %s AND run_id = %s AND task_id = 'report' "
        "AND key = 'plan_page'", (DAG_ID, f"{DAG_ID}-{tag}"))
    link = json.loads(link) if isinstance(link, str) and link.startswith('"') else str(link)
    path = "/" + link.split("://", 1)[-1].split("/", 1)[1]
    assert path.startswith("/incident-ops/plans/"), link
    page = stack.api("GET", path)
    assert page.status_code == 200, (page.status_code, page.text[:300])
    html_keys = [k for k in stored if k.startswith(f"{DAG_ID}/") and k.endswith(".html")]
    assert page.content in [_body(stack, k) for k in html_keys]
    view = stack.api("GET", "/incident-ops/view/")
    assert view.status_code == 200 and f"{DAG_ID}-{tag}" in view.text, view.text[:500]

    # -- and nothing landed on any component's own disk
    written = [str(p) for name in ("api-server", "scheduler", "dag-processor", *WORKERS)
               for p in stack.folder(name).rglob("*") if p.is_file()]
    assert written == [], written
    print(json.dumps({"objects": len(stored), "report_hosts": {
        k: sorted(v) for k, v in report_hosts().items()}}, indent=1))
