"""Tickets with a past: built from canonical fields, imported through RT's own Perl API.

A test that needs durations (hours and days between creation, resolution and close) cannot
create its tickets over REST2: since Debian's RT security update ``5.0.3+dfsg-3~deb12u7``,
REST2 drops ``Created`` from a create body (``tests/integration/test_desk_contract.py``
says so when it changes again). ``import_past`` loads them the way the embedded desk's
seeder does, so RT itself writes every row with the event's own time: ``Created``, the
status transactions, ``Resolved`` and ``LastUpdated``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from incident_ops.desk.rt import mapping

# Canonical fields the desk holds as core columns, not custom fields.
_CORE = {"priority"}


@dataclass(frozen=True)
class Past:
    """One ticket's life at given times (aware): created; picked up (``assigned``: owner set
    and moved to an open status, by default a minute after creation); any further status
    ``moves`` (a 100.6 bounce: ``(t, "resolved"), (t2, "assigned-l1")``); resolved; closed.
    A closed ticket without ``resolved`` was closed straight from work (a duplicate closed
    with its master)."""

    key: str
    subject: str
    priority: str
    created: datetime
    status: str = "new"  # its status now; "resolved" needs ``resolved``
    resolved: datetime | None = None
    closed: datetime | None = None
    owner: str | None = "li.na"
    requester: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)  # canonical name -> value
    member_of: str | None = None  # key of its master, imported earlier in the same batch
    queue: str = "Incidents"
    description: str = ""
    assigned: datetime | None = None  # None: a minute after creation
    moves: Sequence[tuple[datetime, str]] = ()  # (when, status) between pick-up and resolution


def _rt_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    body = mapping.write_payload({k: v for k, v in fields.items() if k not in _CORE}, {})
    return dict(body.get("CustomFields") or {})


def as_seed(p: Past) -> Any:
    from incident_ops.embedded_desk.seed_data import SeedEvent, SeedTicket

    if p.status == "resolved" and p.resolved is None:
        raise ValueError(f"{p.key}: a resolved ticket needs its resolution time")
    assigned = p.assigned or p.created + timedelta(minutes=1)
    open_status = "in-progress" if p.status in ("resolved", "closed") else p.status
    events = [SeedEvent(at=assigned, actor="root", owner=p.owner,
                        status=open_status if open_status != "new" else None)]
    events += [SeedEvent(at=when, actor=p.owner or "root", status=status)
               for when, status in p.moves]
    if p.resolved is not None:
        events.append(SeedEvent(at=p.resolved, actor=p.owner or "root", status="resolved"))
    if p.closed is not None:
        events.append(SeedEvent(at=p.closed, actor="root", status="closed"))
    times = [e.at for e in events]
    if times != sorted(times) or times[0] < p.created:
        raise ValueError(f"{p.key}: its events are not in time order after its creation")
    return SeedTicket(
        key=p.key, scenario="test", queue=p.queue, subject=p.subject,
        description=p.description or p.subject, priority=p.priority, created=p.created,
        creator="root", requestor=p.requester,
        fields={**_rt_fields(p.fields), "Idempotency Key": p.key},
        events=tuple(events), member_of=p.member_of)


def import_past(embedded_desk: Any, tickets: Sequence[Past]) -> dict[str, str]:
    """Import ``tickets`` into the test session's embedded desk; key -> ticket id."""
    if embedded_desk is None:
        pytest.skip("back-dated tickets are imported through RT's Perl API, which only the "
                    "embedded desk offers (REST2 drops Created since RT 5.0.3+dfsg-3~deb12u7)")
    return dict(embedded_desk.import_tickets([as_seed(t) for t in tickets]))
