"""Fetch steps of the urgent-notification and queue-monitoring pipelines (100.5, 100.8).

Both read only what changed or fell due, so a run on a quiet desk costs a couple of
searches whatever the size of the queue:
- urgent: open urgent tickets that do not yet record a notification (one search);
- monitor: open tickets changed since the watermark (new ones, re-prioritised ones) plus
  open tickets whose stored next-rung time has passed (two searches).
The queue snapshot is the one full scan of open tickets, at its own slow cadence.
"""

from __future__ import annotations

from datetime import datetime

from incident_ops.desk.port import ServiceDesk, TicketQuery
from incident_ops.model import Ticket


def fetch_unnotified_urgent(desk: ServiceDesk) -> list[Ticket]:
    return list(desk.search(TicketQuery(open_only=True, priorities=["urgent"],
                                        field_unset=["urgent_notified"])))


def fetch_monitor_batch(desk: ServiceDesk, since: datetime | None, now: datetime) -> list[Ticket]:
    found: dict[str, Ticket] = {}
    for ticket in desk.search(TicketQuery(open_only=True, updated_since=since)):
        found[ticket.id] = ticket
    if since is not None:  # the first run reads every open ticket above anyway
        for ticket in desk.search(TicketQuery(open_only=True,
                                              field_before={"escalation_due": now})):
            found.setdefault(ticket.id, ticket)
    return list(found.values())


def fetch_open(desk: ServiceDesk) -> list[Ticket]:
    return list(desk.search(TicketQuery(open_only=True)))
