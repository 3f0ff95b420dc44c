"""Desk events as an Airflow asset (issue 28): ``urgent_incidents`` runs seconds after the
desk publishes that a ticket may have become urgent, and on its cron as the safety net.

The RT scrip (docs/desk-events.md) publishes ``{"ticket": ...}`` to a Redis pub/sub channel.
``DeskEventTrigger`` runs in the triggerer, subscribed for as long as the DAG is unpaused,
and turns what arrives within ``batch_seconds`` of the first message into one asset event
naming the tickets (a flood makes a few runs, not one per message). The run reads the
desk (``tasks.plans.plan_urgent``: the whole urgent queue, see there why): nothing in a
message is trusted beyond "look at ticket N".

Why not ``MessageQueueTrigger(scheme="redis+pubsub")`` (apache-airflow-providers-redis 4.7):
its trigger sleeps ``poll_interval`` between reads and ends after one message, so the
triggerer restarts it, and pub/sub forgets whatever is published while nobody is
subscribed: a flood would lose most of its events. This trigger stays subscribed. A message
lost anyway (triggerer restarting, Redis down) is found by the cron run, and the engine's
keys make the two paths notify each ticket once.

Settings (read when the DAG file is parsed, like the schedule): ``INCIDENT_OPS_URGENT_EVENTS``
(``on`` by default; ``off``: the cron only), connection ``desk_events_default`` (type redis:
host, port, password; extra ``channel``, default ``incident-ops.desk-events``).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from incident_ops.desk.events import DEFAULT_CHANNEL, ticket_named, tickets_named

log = logging.getLogger(__name__)

EVENTS_CONN = "desk_events_default"
ASSET_NAME = "incident_ops_desk_events"
EVENTS_SETTING = "INCIDENT_OPS_URGENT_EVENTS"
SCHEDULE_SETTING = "INCIDENT_OPS_URGENT_SCHEDULE"
# The poll alone is every minute; with events on it is the safety net, every 5 minutes.
POLL_SCHEDULE = "* * * * *"
SAFETY_NET_SCHEDULE = "*/5 * * * *"


def events_enabled() -> bool:
    """Desk events are opt-in (``INCIDENT_OPS_URGENT_EVENTS=on``): they need Redis, the
    ``desk_events_default`` connection and the desk's scrip, which a deployment sets up; off,
    the cron polls every minute as before."""
    return os.environ.get(EVENTS_SETTING, "off").strip().lower() in ("on", "1", "true", "yes")


class DeskEventTrigger(BaseEventTrigger):
    """Subscribed to the desk-events channel; yields ``{"tickets": [...], "events": n}``."""

    def __init__(self, conn_id: str = EVENTS_CONN, channel: str | None = None,
                 batch_seconds: float = 0.5, max_batch: int = 200,
                 retry_seconds: float = 5.0) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.channel = channel
        self.batch_seconds = batch_seconds
        self.max_batch = max_batch
        self.retry_seconds = retry_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}",
                {"conn_id": self.conn_id, "channel": self.channel,
                 "batch_seconds": self.batch_seconds, "max_batch": self.max_batch,
                 "retry_seconds": self.retry_seconds})

    async def _target(self) -> tuple[dict[str, Any], str]:
        from airflow.sdk import BaseHook

        conn = await BaseHook.aget_connection(self.conn_id)
        extra = conn.extra_dejson
        channel = self.channel or extra.get("channel") or DEFAULT_CHANNEL
        return {"host": conn.host or "127.0.0.1", "port": int(conn.port or 6379),
                "password": conn.password or None, "db": int(extra.get("db", 0))}, channel

    async def run(self) -> AsyncIterator[TriggerEvent]:
        import redis.asyncio as aioredis
        from redis.exceptions import RedisError

        while True:
            try:
                target, channel = await self._target()
                client = aioredis.Redis(**target, socket_connect_timeout=5)
                async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(channel)
                    self.log.info("listening to desk events on %s:%s %s", target["host"],
                                  target["port"], channel)
                    while True:
                        batch = await self._next_batch(pubsub)
                        tickets = tickets_named(batch)
                        junk = sum(1 for m in batch if ticket_named(m) is None)
                        if junk:
                            self.log.warning("%d desk event(s) named no ticket: dropped", junk)
                        if tickets:
                            yield TriggerEvent({"tickets": tickets, "events": len(batch)})
            except (RedisError, OSError, LookupError, ValueError) as exc:
                # Connection missing, Redis down or gone: the cron run keeps notifying.
                self.log.warning("desk events unavailable (%s: %s); retrying in %.0f s",
                                 type(exc).__name__, exc, self.retry_seconds)
                await asyncio.sleep(self.retry_seconds)
            except Exception as exc:  # noqa: BLE001 - AirflowNotFoundException and kin
                self.log.warning("desk events unavailable (%s: %s); retrying in %.0f s",
                                 type(exc).__name__, exc, max(self.retry_seconds, 30))
                await asyncio.sleep(max(self.retry_seconds, 30))

    async def _next_batch(self, pubsub: Any) -> list[Any]:
        """The next message and whatever follows within ``batch_seconds`` of it."""
        loop = asyncio.get_running_loop()
        batch: list[Any] = []
        while not batch:
            message = await pubsub.get_message(timeout=30.0)
            if message and message.get("type") == "message":
                batch.append(message["data"])
        deadline = loop.time() + self.batch_seconds
        while len(batch) < self.max_batch and (left := deadline - loop.time()) > 0:
            message = await pubsub.get_message(timeout=left)
            if message and message.get("type") == "message":
                batch.append(message["data"])
        return batch


def desk_events_asset() -> Any:
    from airflow.sdk import Asset, AssetWatcher

    return Asset(ASSET_NAME, watchers=[AssetWatcher(name="desk_events",
                                                    trigger=DeskEventTrigger())])


def urgent_schedule(timezone: Any) -> Any:
    """The cron (``INCIDENT_OPS_URGENT_SCHEDULE``; by default every minute, every 5 minutes as
    the safety net when events are on), or desk events or the cron when events are on."""
    from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable

    default = SAFETY_NET_SCHEDULE if events_enabled() else POLL_SCHEDULE
    cron = CronTriggerTimetable(os.environ.get(SCHEDULE_SETTING, default), timezone=timezone)
    if not events_enabled():
        return cron
    return AssetOrTimeSchedule(timetable=cron, assets=desk_events_asset())


def named_tickets(context: Any) -> list[str] | None:
    """The tickets the desk events behind this run name; None for a cron or manual run (or
    events naming nothing usable): that run reads the whole urgent queue."""
    events = context.get("triggering_asset_events") if hasattr(context, "get") else None
    if not events:
        return None
    messages: list[dict[str, Any]] = []
    for asset_events in events.values():
        for event in asset_events:
            payload = (event.extra or {}).get("payload") or {}
            tickets = payload.get("tickets") if isinstance(payload, dict) else None
            if isinstance(tickets, list):
                messages.extend({"ticket": t} for t in tickets)
    return tickets_named(messages) or None
