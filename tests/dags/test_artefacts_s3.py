"""Artefacts in a bucket (issue 27): the DAGs write and the API server serves through
``ObjectStoragePath`` on a real S3-speaking server (moto in server mode on loopback, started
here), credentials from an Airflow connection. Nothing lands on the local reports folder.

One test, to keep the suite's time: a closure DAG run (plan JSON, day index, the Plan page
served by the plugin, the view's data) and a manager report's archive written, checked,
mailed from and ledgered in the bucket through the same store the report tasks open (the
report DAG's own wiring runs on a folder in ``test_incident_reports``)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import pytest

from tests.dags.conftest import succeeded
from tests.support.airflow_dags import run_dag, xcom

BUCKET = "incident-ops-artefacts"
PREFIX = "cluster-a"
CONN = "artefacts_s3"


@pytest.fixture
def bucket(monkeypatch, tmp_path) -> Iterator[Any]:
    """A moto S3 server on a free loopback port, one bucket, the store pointed at it."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test",
                      aws_secret_access_key="test", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN.upper()}", json.dumps({
        "conn_type": "aws", "login": "test", "password": "test",
        "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"}}))
    monkeypatch.setenv("INCIDENT_OPS_ARTEFACTS", f"s3://{BUCKET}/{PREFIX}")
    monkeypatch.setenv("INCIDENT_OPS_ARTEFACTS_CONN", CONN)
    from airflow.sdk.io import store as airflow_stores

    from incident_ops.airflow import object_store

    def forget() -> None:  # each test's server has its own port: no filesystem of before
        object_store._STORES.clear()
        airflow_stores._STORE_CACHE.clear()

    forget()
    try:
        yield s3
    finally:
        forget()
        server.stop()


def objects(s3: Any, prefix: str = "") -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET,
                                                         Prefix=f"{PREFIX}/{prefix}")
    return sorted(o["Key"].removeprefix(f"{PREFIX}/") for p in pages
                  for o in p.get("Contents", []))


def body(s3: Any, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{key}")["Body"].read())


def plan_page_xcom(dag_run: Any) -> str:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(XComModel).filter(
            XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id,
            XComModel.task_id == "report", XComModel.key == "plan_page").one()
        value = row.value
    text = value.decode() if isinstance(value, bytes) else str(value)
    return str(json.loads(text)) if text.startswith('"') else text


def test_artefacts_are_written_to_the_bucket_and_read_back_from_it(bucket, env):
    from incident_ops.airflow.object_store import artefact_store
    from incident_ops.airflow.web.plan_pages import create_app
    from incident_ops.engine.once import StoreLedger, once
    from incident_ops.reports.trail import recent_runs
    from tests.support.report_sample import render_sample

    store = artefact_store()
    assert store.url("") == f"s3://{BUCKET}/{PREFIX}"

    # A closure run: its plan JSON and page, and the day's index, in the bucket.
    run = run_dag("incident_closure")
    succeeded(run)
    report = xcom(run, "report")["report"]
    plan = json.loads(body(bucket, report["json"]))
    assert plan["pipeline"] == "incident_closure" and plan["run_id"] == run.run_id
    day = report["json"].split("/")[1]
    index = json.loads(body(bucket, f"_index/incident_closure/{day}.json"))
    assert report["json"] in [r["key"] for r in index["runs"]]

    # The Plan page link, served by the plugin's route from the bucket.
    path = urlsplit(plan_page_xcom(run)).path
    assert path.startswith("/incident-ops/plans/")
    dag_id, page_day, name = path.removeprefix("/incident-ops/plans/").split("/")
    [route] = [r for r in create_app().routes
               if getattr(r, "path", "") == "/plans/{dag_id}/{day}/{name}"]
    served = route.endpoint(dag_id=dag_id, day=page_day, name=name)  # type: ignore[attr-defined]
    assert served.status_code == 200 and "text/html" in served.media_type
    assert served.body == body(bucket, report["html"])
    # The Incident ops view's data, read from the bucket's index.
    assert run.run_id in [r.run_id for r in recent_runs(store)["incident_closure"]]

    # A manager report's archive: rendered into the bucket, the mail built from it (the
    # manifest's digests checked against the objects), sent once by the bucket's ledger.
    sample = render_sample(store, "zh")
    folder = sample.archive.folder + "/"
    stored = objects(bucket, folder)
    for name in ("kpis.json", "manifest.json", "report.html", "email.html", "workbook.xlsx"):
        assert folder + name in stored, stored
    assert any(k.startswith(folder + "charts/") and k.endswith(".png") for k in stored)
    [workbook] = [a for a in sample.email.attachments if a.filename.endswith(".xlsx")]
    kept = pd.read_excel(io.BytesIO(body(bucket, folder + "workbook.xlsx")), sheet_name=None)
    mailed = pd.read_excel(io.BytesIO(workbook.content), sheet_name=None)
    assert list(kept) == list(mailed)
    ledger = StoreLedger(store, sample.archive.sent_marker)
    sent = {"message_id": "<daily@incident-ops>", "at": datetime.now(UTC).isoformat()}
    assert once(ledger, lambda: sent).acted
    assert not once(ledger, lambda: pytest.fail("sent twice")).acted  # type: ignore[arg-type,return-value]
    assert json.loads(body(bucket, folder + "sent.json"))["message_id"] == sent["message_id"]

    assert not env["reports"].exists()  # nothing on this host's disk


def test_the_bucket_store_opens_where_an_event_loop_is_running(bucket):
    """The API server's async routes run with a loop in their thread (and a test process
    after Playwright's sync API does too): the S3 store must still open there. Failed before
    with "asyncio.run() cannot be called from a running event loop" (the amazon provider
    checks credentials with asyncio.run)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from incident_ops.airflow.object_store import artefact_store

    async def opened_inside_a_loop() -> Any:
        return artefact_store()

    # On a thread of its own: this worker's main thread may have a loop running already
    # (Playwright's sync API after a browser test), where asyncio.run() itself refuses.
    with ThreadPoolExecutor(max_workers=1) as pool:
        store = pool.submit(asyncio.run, opened_inside_a_loop()).result()
    store.write_bytes("probe/opened-in-a-loop.txt", "探针 probe".encode())
    assert body(bucket, "probe/opened-in-a-loop.txt").decode() == "探针 probe"
