"""The answer pages' failure paths, which the real desk cannot produce on demand: the desk
down (500s), a person's change between the page's read and its write, a missing or broken
secret. The working path runs on a real Airflow and RT in tests/e2e/test_requester_answer.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from incident_ops.desk.memory import MemoryDesk
from incident_ops.desk.port import StaleTicket, TransientDeskError
from incident_ops.model import Ticket
from incident_ops.policy.answers import claims_for, sign

SECRET = "unit-secret-0123456789"


@pytest.fixture
def site(monkeypatch):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from incident_ops.airflow.bootstrap import WebServices
    from incident_ops.airflow.web import answer_pages

    monkeypatch.setenv("AIRFLOW_CONN_INCIDENT_OPS_ANSWERS", json.dumps(
        {"conn_type": "generic", "password": SECRET}))
    desk = MemoryDesk()
    now = datetime.now(UTC).replace(microsecond=0)
    desk.add(Ticket(id="7", subject="打印机", status="resolved", priority="low",
                    created=now - timedelta(hours=3), updated=now, requester="r@x.cn",
                    confirmation="pending", confirmation_asked_at=now))
    web = WebServices()
    monkeypatch.setattr(web, "desk", lambda: desk)
    app = FastAPI()
    answer_pages.register(app, web)
    fixed, not_fixed = (f"/answer/{sign(SECRET, c)}"
                        for c in claims_for("7", now, timedelta(days=1)))
    return TestClient(app), desk, fixed, not_fixed


def test_a_desk_that_answers_500_gets_a_try_again_page_and_the_link_still_works(site):
    client, desk, _, not_fixed = site
    desk.fail("get", TransientDeskError("HTTP 500 from the desk"), times=1)
    down = client.post(not_fixed, data={"comment": "x"})
    assert down.status_code == 503 and "try the same link again" in down.text
    assert desk.ticket("7").confirmation == "pending"
    again = client.post(not_fixed, data={"comment": "x"})
    assert again.status_code == 200 and desk.ticket("7").confirmation == "rejected"


def test_a_change_between_read_and_write_is_read_again_and_the_answer_recorded_once(site):
    client, desk, fixed, _ = site
    desk.fail("update", StaleTicket("moved", ticket_id="7"), times=2)
    answered = client.post(fixed, data={"comment": "好了 works"})
    assert answered.status_code == 200, answered.text
    assert desk.ticket("7").confirmation == "confirmed"
    assert len([c for c in desk.comments_on("7") if "100.7.2" in c]) == 1
    assert desk.calls["update"] == 3  # two refused, one written


def test_opening_a_link_changes_nothing(site):
    client, desk, fixed, _ = site
    before = desk.ticket("7").version
    page = client.get(fixed)
    assert page.status_code == 200 and "<form method=\"post\">" in page.text
    assert desk.ticket("7").version == before and desk.calls["update"] == 0


def test_without_a_secret_the_pages_say_links_are_off(site, monkeypatch):
    client, desk, fixed, _ = site
    monkeypatch.delenv("AIRFLOW_CONN_INCIDENT_OPS_ANSWERS")
    assert client.post(fixed).status_code == 503
    monkeypatch.setenv("AIRFLOW_CONN_INCIDENT_OPS_ANSWERS", json.dumps(
        {"conn_type": "generic", "password": ""}))  # a broken connection: said, not a 500
    off = client.post(fixed)
    assert off.status_code == 503 and "not enabled" in off.text
    assert desk.ticket("7").confirmation == "pending"


# ------------------------------------------------------------------ a rotated secret
OLD = "old-secret-0123456789"


def _rotated(monkeypatch, retire_after: str) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_INCIDENT_OPS_ANSWERS", json.dumps({
        "conn_type": "generic", "password": SECRET,
        "extra": {"previous_secrets": [{"secret": OLD, "retire_after": retire_after}]}}))


def test_a_link_signed_with_the_previous_secret_works_until_it_retires_then_says_so(
        site, monkeypatch, caplog):
    import logging

    client, desk, _, _ = site
    asked = desk.ticket("7").confirmation_asked_at
    fixed_old, not_fixed_old = (f"/answer/{sign(OLD, c)}"
                                for c in claims_for("7", asked, timedelta(days=14)))
    caplog.set_level(logging.DEBUG)
    assert client.get(fixed_old).status_code == 400  # before the rotation: not ours
    now = datetime.now(UTC)
    _rotated(monkeypatch, (now + timedelta(days=15)).isoformat())
    assert client.get(fixed_old).status_code == 200
    _rotated(monkeypatch, (now - timedelta(minutes=1)).isoformat())
    retired = client.post(not_fixed_old, data={"comment": "x"})
    assert retired.status_code == 410, retired.text
    assert "the key that signed it has been retired" in retired.text
    assert "retired on " + (now - timedelta(minutes=1)).strftime("%Y-%m-%d") in retired.text
    assert desk.ticket("7").confirmation == "pending"
    _rotated(monkeypatch, (now + timedelta(days=15)).isoformat())
    answered = client.post(not_fixed_old, data={"comment": "x"})
    assert answered.status_code == 200 and desk.ticket("7").confirmation == "rejected"
    said = "\n".join(r.getMessage() for r in caplog.records)
    assert "retired" in said and OLD not in said and SECRET not in said


def test_a_broken_previous_secrets_extra_turns_links_off_and_the_log_names_no_secret(
        site, monkeypatch, caplog):
    client, desk, fixed, _ = site
    _rotated(monkeypatch, "someday")
    off = client.post(fixed)
    assert off.status_code == 503 and "not enabled" in off.text
    said = "\n".join(r.getMessage() for r in caplog.records)
    assert "previous_secrets" in said and "entry 1: retire_after 'someday'" in said
    assert OLD not in said and SECRET not in said
