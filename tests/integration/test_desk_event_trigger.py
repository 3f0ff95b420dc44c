"""``DeskEventTrigger`` against a real redis-server, and how ``urgent_incidents`` reads the
events behind a run (issue 28)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from incident_ops.airflow.provider.desk_events import (
    DeskEventTrigger,
    named_tickets,
    urgent_schedule,
)
from incident_ops.desk.events import tickets_named
from tests.deploy.services import Redis
from tests.support.desk_events import redis_binary, redis_server

needs_redis = pytest.mark.skipif(redis_binary() is None, reason="redis-server not installed")


@pytest.fixture(scope="module")
def redis() -> Iterator[Redis]:
    with redis_server() as server:
        yield server


def _events(redis: Redis, published: list[str], wanted: int, **kwargs: object) -> list[dict]:
    """Run the trigger, publish once it listens, collect ``wanted`` events."""
    import redis as redis_py

    async def scenario() -> list[dict]:
        trigger = DeskEventTrigger(channel="test.desk-events", **kwargs)  # type: ignore[arg-type]
        stream = trigger.run()
        client = redis_py.Redis(host="127.0.0.1", port=redis.port)
        got: list[dict] = []

        async def publish() -> None:
            while client.pubsub_numsub("test.desk-events")[0][1] < 1:
                await asyncio.sleep(0.05)  # until the trigger has subscribed
            for message in published:
                client.publish("test.desk-events", message)

        publisher = asyncio.create_task(publish())
        async for event in stream:
            got.append(event.payload)
            if len(got) == wanted:
                break
        await stream.aclose()
        await publisher
        return got

    # In a thread of its own: an earlier test of this worker (Playwright's sync API) can
    # leave an event loop running in the main thread, where asyncio.run() refuses to start.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, asyncio.wait_for(scenario(), 60)).result()


@needs_redis
def test_a_burst_of_messages_is_one_event_naming_each_ticket_once(redis, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_DESK_EVENTS_DEFAULT",
                       json.dumps({"conn_type": "redis", "host": "127.0.0.1",
                                   "port": redis.port}))
    burst = [json.dumps({"ticket": t, "changes": ["priority"]}) for t in ("7", "8", "7", "9")]
    (event,) = _events(redis, [*burst, "not json", json.dumps({"ticket": "1; drop"})], 1,
                       batch_seconds=30, max_batch=6)
    assert event == {"tickets": ["7", "8", "9"], "events": 6}


@needs_redis
def test_it_stays_subscribed_after_an_event(redis, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_DESK_EVENTS_DEFAULT",
                       json.dumps({"conn_type": "redis", "host": "127.0.0.1",
                                   "port": redis.port}))
    events = _events(redis, [json.dumps({"ticket": str(n)}) for n in range(1, 4)], 3,
                     batch_seconds=0, max_batch=1)
    assert [e["tickets"] for e in events] == [["1"], ["2"], ["3"]]


def test_nothing_in_a_message_beyond_a_ticket_number_reaches_the_desk():
    assert tickets_named([{"ticket": "12"}, {"ticket": 13}, {"ticket": "0"}, {"ticket": "-4"},
                          {"ticket": "12 OR 1=1"}, {"id": "5"}, "[]", b'{"ticket": "14"}',
                          {"ticket": "12"}]) == ["12", "13", "14"]


def test_a_run_started_by_desk_events_knows_the_tickets_they_name():
    def event(tickets: object) -> SimpleNamespace:
        return SimpleNamespace(extra={"from_trigger": True, "payload": {"tickets": tickets}})

    context = {"triggering_asset_events": {"asset": [event(["3", "4"]), event(["4", "x"])]}}
    assert named_tickets(context) == ["3", "4"]
    assert named_tickets({"triggering_asset_events": {}}) is None  # cron or manual run
    assert named_tickets({"triggering_asset_events": {"a": [event("3")]}}) is None


def test_events_off_leaves_the_cron_alone(monkeypatch):
    from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable

    monkeypatch.setenv("INCIDENT_OPS_URGENT_SCHEDULE", "*/7 * * * *")
    monkeypatch.setenv("INCIDENT_OPS_URGENT_EVENTS", "off")
    assert isinstance(urgent_schedule("UTC"), CronTriggerTimetable)
    monkeypatch.setenv("INCIDENT_OPS_URGENT_EVENTS", "on")
    both = urgent_schedule("UTC")
    assert isinstance(both, AssetOrTimeSchedule)
    (watcher,) = both.asset_condition.watchers
    assert isinstance(watcher.trigger, DeskEventTrigger)


def test_events_are_opt_in_and_the_cron_polls_every_minute_without_them(monkeypatch):
    """The demo and docker-compose run without Redis: by default urgent_incidents polls
    every minute, as before events; turned on, the cron is the 5-minute safety net."""
    from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable

    monkeypatch.delenv("INCIDENT_OPS_URGENT_SCHEDULE", raising=False)
    monkeypatch.delenv("INCIDENT_OPS_URGENT_EVENTS", raising=False)
    alone = urgent_schedule("UTC")
    assert isinstance(alone, CronTriggerTimetable)
    assert alone.expression == "* * * * *"
    monkeypatch.setenv("INCIDENT_OPS_URGENT_EVENTS", "on")
    both = urgent_schedule("UTC")
    assert isinstance(both, AssetOrTimeSchedule)
    assert both.timetable.expression == "*/5 * * * *"
