"""The desk's events (issue 28) against a real RT 5 and a real redis-server: the scrip that
provisioning installs publishes "look at ticket N" when a ticket is created, its priority
changes or "First Line Cannot Handle" (100.5.2) is set, and nothing for other changes; a
Redis that is gone never fails the update."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from incident_ops.embedded_desk import EmbeddedDesk
from tests.deploy.services import Redis
from tests.support.desk_events import (
    NORMAL_PRIORITY,
    Subscriber,
    create_ticket,
    events_desk,
    redis_binary,
    redis_server,
    rest,
    set_priority,
)

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not EmbeddedDesk.rt_installed(), reason="RT 5 not installed"),
              pytest.mark.skipif(redis_binary() is None, reason="redis-server not installed")]


@pytest.fixture(scope="module")
def redis() -> Iterator[Redis]:
    with redis_server() as server:
        yield server


@pytest.fixture(scope="module")
def desk(redis: Redis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDesk]:
    with events_desk(tmp_path_factory.mktemp("events-desk"), redis.port) as desk:
        yield desk


def test_a_new_ticket_is_announced_with_its_transaction_time(desk, redis):
    with Subscriber(redis.port) as heard:
        tid = create_ticket(desk.rest_url, "计费批价中断")
        (event,) = heard.wait(lambda m: m["ticket"] == tid)
    assert event["changes"] == ["created"]
    history = rest(desk.rest_url, "GET", f"/ticket/{tid}/history",
                   params={"fields": "Type,Created"})["items"]
    created = next(h for h in history if h["Type"] == "Create")
    assert event["transaction"] == str(created["id"])
    assert event["at"] == created["Created"]  # RT's ISO time, UTC


def test_a_priority_change_and_the_first_line_flag_are_announced_other_edits_are_not(desk,
                                                                                     redis):
    tid = create_ticket(desk.rest_url, "营业厅开户缓慢", priority=NORMAL_PRIORITY)
    with Subscriber(redis.port) as heard:
        rest(desk.rest_url, "PUT", f"/ticket/{tid}", json={"Subject": "营业厅开户很慢"})
        set_priority(desk.rest_url, tid)
        rest(desk.rest_url, "PUT", f"/ticket/{tid}",
             json={"CustomFields": {"Category": "performance"}})
        rest(desk.rest_url, "PUT", f"/ticket/{tid}",
             json={"CustomFields": {"First Line Cannot Handle": "yes"}})
        heard.wait(lambda m: m["ticket"] == tid, 2)
        # Published in order from one connection each: the flag's event arriving second
        # shows that neither the subject nor the category made one in between.
    assert [m["changes"] for m in heard.messages if m["ticket"] == tid] == [
        ["priority"], ["first_line_cannot_handle"]]


def test_one_update_that_changes_both_is_one_event(desk, redis):
    tid = create_ticket(desk.rest_url, "短信下发延迟", priority=NORMAL_PRIORITY)
    with Subscriber(redis.port) as heard:
        rest(desk.rest_url, "PUT", f"/ticket/{tid}", json={
            "Priority": 90, "CustomFields": {"First Line Cannot Handle": "yes"}})
        (event,) = heard.wait(lambda m: m["ticket"] == tid)
    assert sorted(event["changes"]) == ["first_line_cannot_handle", "priority"]


def test_with_redis_gone_the_update_is_made_and_the_failure_logged(tmp_path: Path):
    with redis_server() as gone:
        port = gone.port
    with events_desk(tmp_path / "desk", port) as desk:
        tid = create_ticket(desk.rest_url, "核心网告警")
        set_priority(desk.rest_url, tid, 50)
        ticket = rest(desk.rest_url, "GET", f"/ticket/{tid}")
        assert ticket["Priority"] == "50" or ticket["Priority"] == 50
        log = (desk.workdir / "rt.log").read_text(encoding="utf-8", errors="replace")
    assert f"incident-ops desk event for ticket {tid} not published" in log
