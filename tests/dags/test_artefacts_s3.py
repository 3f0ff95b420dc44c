"""Artefacts in a bucket (issue 27): the DAGs write and the API server serves through
``ObjectStoragePath`` on a real S3-speaking server (moto in server mode on loopback, started
here), credentials from an Airflow connection. Nothing lands on the local reports folder."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import pytest

from tests.dags.conftest import succeeded
from tests.dags.test_incident_reports import DAG_ID, DAY, report_mails, workbook_of
from tests.dags.test_incident_reports import env as report_env  # noqa: F401 - a fixture
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


def test_the_daily_report_archives_in_the_bucket_and_mails_its_workbook(
        bucket, report_env, tmp_path):  # noqa: F811 - the imported fixture
    run = run_dag(DAG_ID, conf={"date": DAY})
    succeeded(run)
    folder = f"daily/{DAY}/"
    stored = objects(bucket, folder)
    for name in ("tickets.csv.gz", "kpis.json", "manifest.json", "report.html",
                 "email.html", "workbook.xlsx", "sent.json"):
        assert folder + name in stored, stored
    assert any(k.startswith(folder + "charts/") and k.endswith(".png") for k in stored)
    # The workbook in the bucket is the one that was mailed.
    [message] = report_mails(report_env["mail"])
    mailed = workbook_of(message)
    kept = pd.read_excel(io.BytesIO(body(bucket, folder + "workbook.xlsx")), sheet_name=None)
    assert list(kept) == list(mailed)
    for sheet in kept:
        pd.testing.assert_frame_equal(kept[sheet], mailed[sheet])
    sent = json.loads(body(bucket, folder + "sent.json"))
    assert sent["message_id"] == str(message["Message-ID"])
    assert xcom(run, "compute")["kpis"] == f"s3://{BUCKET}/{PREFIX}/{folder}kpis.json"
    assert not (tmp_path / "reports").exists()  # nothing on this host's disk

    # A second run finds the bucket's send ledger: no second mail.
    succeeded(run_dag(DAG_ID, conf={"date": DAY}))
    assert len(report_mails(report_env["mail"])) == 1


def test_a_closure_runs_plan_json_and_page_come_back_from_the_bucket(bucket, env):
    from incident_ops.airflow.web.plan_pages import create_app

    run = run_dag("incident_closure")
    succeeded(run)
    report = xcom(run, "report")["report"]
    plan = json.loads(body(bucket, report["json"]))
    assert plan["pipeline"] == "incident_closure" and plan["run_id"] == run.run_id
    day = report["json"].split("/")[1]
    assert f"_index/incident_closure/{day}.json" in objects(bucket, "_index/")
    index = json.loads(body(bucket, f"_index/incident_closure/{day}.json"))
    assert report["json"] in [r["key"] for r in index["runs"]]
    assert not (env["reports"]).exists()

    # The Plan page link, served by the plugin's route from the bucket.
    url = plan_page_xcom(run)
    path = urlsplit(url).path
    assert path.startswith("/incident-ops/plans/")
    dag_id, page_day, name = path.removeprefix("/incident-ops/plans/").split("/")
    [route] = [r for r in create_app().routes
               if getattr(r, "path", "") == "/plans/{dag_id}/{day}/{name}"]
    served = route.endpoint(dag_id=dag_id, day=page_day, name=name)  # type: ignore[attr-defined]
    assert served.status_code == 200 and "text/html" in served.media_type
    assert served.body == body(bucket, report["html"])
    assert plan["run_id"].encode() in served.body or b"incident_closure" in served.body

    # The Incident ops view's data, read from the bucket's index.
    from incident_ops.airflow.object_store import artefact_store
    from incident_ops.reports.trail import recent_runs

    runs = recent_runs(artefact_store())
    assert run.run_id in [r.run_id for r in runs["incident_closure"]]
