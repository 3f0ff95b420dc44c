"""Fixtures for the RT adapter against the real desk.

The desk itself comes from the top-level ``desk_url`` fixture: ``$DESK_URL`` when set
(``DESK_USER``/``DESK_PASSWORD``, default root/password), otherwise the embedded RT 5 started
through ``incident_ops.embedded_desk.EmbeddedDesk``. Every ticket made here has a subject
starting with ``rt-adapter-test`` and a unique marker, so tests can share a desk (the demo's
included) without seeing each other's tickets.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from incident_ops.desk.port import TicketQuery
from incident_ops.desk.rt import RequestTrackerDesk, RetryPolicy, RTClient
from incident_ops.model import TicketDraft
from tests.support.fault_proxy import FaultProxy

SUBJECT_PREFIX = "rt-adapter-test"


@dataclass(frozen=True)
class DeskAccess:
    url: str
    user: str
    password: str


@pytest.fixture(scope="session")
def rt_access(desk_url: str, embedded_desk: Any) -> DeskAccess:
    if embedded_desk is not None:
        return DeskAccess(desk_url, embedded_desk.user, embedded_desk.password)
    return DeskAccess(desk_url, os.environ.get("DESK_USER", "root"),
                      os.environ.get("DESK_PASSWORD", "password"))


def make_desk(url: str, access: DeskAccess, *, page_size: int = 100,
              timeout: tuple[float, float] = (5.0, 60.0), attempts: int = 4,
              settle_seconds: float = 10.0) -> RequestTrackerDesk:
    client = RTClient(url, user=access.user, password=access.password, timeout=timeout,
                      retry=RetryPolicy(attempts=attempts, backoff=0.2, backoff_cap=1.0,
                                        retry_after_cap=3.0))
    return RequestTrackerDesk(client, page_size=page_size, settle_seconds=settle_seconds)


@pytest.fixture
def rt_desk(rt_access: DeskAccess) -> Iterator[RequestTrackerDesk]:
    """The adapter as root, straight at the desk; a fresh client (request counter at 0)."""
    desk = make_desk(rt_access.url, rt_access)
    yield desk
    desk.client.close()


class Person:
    """Someone at the desk's web UI: raw REST2 calls outside the adapter."""

    def __init__(self, access: DeskAccess) -> None:
        self.api = access.url.rstrip("/") + "/REST/2.0"
        self.session = requests.Session()
        self.session.auth = (access.user, access.password)

    def put(self, ticket_id: str, body: dict[str, Any]) -> list[Any]:
        resp = self.session.put(f"{self.api}/ticket/{ticket_id}", json=body, timeout=60)
        resp.raise_for_status()
        return list(resp.json())

    def ticket(self, ticket_id: str) -> dict[str, Any]:
        resp = self.session.get(f"{self.api}/ticket/{ticket_id}", timeout=60)
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data

    def cf(self, ticket_id: str, name: str) -> list[str]:
        for cf in self.ticket(ticket_id).get("CustomFields") or []:
            if cf.get("name") == name:
                return list(cf.get("values") or [])
        return []

    def history(self, ticket_id: str) -> list[dict[str, Any]]:
        """Every transaction of the ticket with its Type and Field (oldest first)."""
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            resp = self.session.get(f"{self.api}/ticket/{ticket_id}/history", timeout=60, params={
                "per_page": 100, "page": page, "fields": "Type,Field,NewValue,OldValue"})
            resp.raise_for_status()
            data = resp.json()
            items += data.get("items") or []
            if page >= (data.get("pages") or 1):
                return items
            page += 1

    def count(self, ticket_id: str, txn_type: str) -> int:
        return sum(1 for t in self.history(ticket_id) if t.get("Type") == txn_type)

    def tickets_with_key(self, key: str) -> list[str]:
        resp = self.session.get(f"{self.api}/tickets", timeout=60, params={
            "query": f"CF.{{Idempotency Key}} = '{key}'", "per_page": 100})
        resp.raise_for_status()
        return [str(i["id"]) for i in resp.json().get("items") or []]


@pytest.fixture
def person(rt_access: DeskAccess) -> Iterator[Person]:
    p = Person(rt_access)
    yield p
    p.session.close()


@pytest.fixture
def marker() -> str:
    """A value unique to this test, for the System field of its tickets."""
    return f"{SUBJECT_PREFIX}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def new_ticket(rt_desk: RequestTrackerDesk, marker: str) -> Callable[..., str]:
    """Create a ticket tagged with this test's marker; returns its id."""
    counter = iter(range(1000))

    def create(subject: str = "", **fields: Any) -> str:
        n = next(counter)
        draft = TicketDraft(
            queue="Incidents", subject=f"{SUBJECT_PREFIX} {marker} #{n} {subject}".strip(),
            description="created by the RT adapter integration tests",
            idempotency_key=f"{marker}-{n}", priority=fields.pop("priority", "medium"),
            status=fields.pop("status", None), requester=fields.pop("requester", None),
            fields={"system": marker, **fields})
        return rt_desk.create(draft)

    return create


@pytest.fixture
def mine(marker: str) -> TicketQuery:
    """A query for exactly this test's tickets."""
    return TicketQuery(fields={"system": marker})


@pytest.fixture
def fault_proxy(rt_access: DeskAccess) -> Iterator[FaultProxy]:
    """The fault-injecting proxy in front of the desk under test."""
    with FaultProxy(rt_access.url) as proxy:
        yield proxy


@pytest.fixture
def faulty_desk(fault_proxy: FaultProxy, rt_access: DeskAccess) -> Iterator[RequestTrackerDesk]:
    """The adapter talking through the proxy, with a short read timeout for ``delay``."""
    desk = make_desk(fault_proxy.url, rt_access, timeout=(2.0, 2.0), settle_seconds=6.0)
    yield desk
    desk.client.close()


@pytest.fixture
def patient_desk(fault_proxy: FaultProxy, rt_access: DeskAccess) -> Iterator[RequestTrackerDesk]:
    """The adapter through the proxy with a read timeout no load reaches: for a lost answer
    (``drop_response``) whose ``then`` (a person's edit) must land before the client hears
    the connection close, not after a 2 s timeout on a busy machine made it read back early."""
    desk = make_desk(fault_proxy.url, rt_access, timeout=(2.0, 60.0), settle_seconds=6.0)
    yield desk
    desk.client.close()
