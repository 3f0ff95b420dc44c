"""The ``ServiceDesk`` port's contract (``tests/support/port_contract.py``) run against the
real RT; its other half, the in-memory desk, runs in ``make unit``
(``tests/unit/test_memory_desk_contract.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from incident_ops.desk.port import ServiceDesk
from tests.integration.conftest import DeskAccess, make_desk
from tests.support.port_contract import Contract, PortContract

pytestmark = pytest.mark.integration


@pytest.fixture(params=["rt"])
def contract(request: pytest.FixtureRequest) -> Iterator[Contract]:
    marker = f"port-{uuid.uuid4().hex[:10]}"
    access: DeskAccess = request.getfixturevalue("rt_access")
    desk = make_desk(access.url, access)
    session = requests.Session()
    session.auth = (access.user, access.password)

    def edit(tid: str, subject: str) -> None:
        session.put(f"{access.url}/REST/2.0/ticket/{tid}", json={"Subject": subject},
                    timeout=30).raise_for_status()

    clients: list[Any] = []

    def another() -> ServiceDesk:
        clients.append(make_desk(access.url, access))
        return clients[-1]

    def files(tid: str) -> list[str]:
        items = session.get(f"{access.url}/REST/2.0/ticket/{tid}/attachments", timeout=30,
                            params={"fields": "Filename", "per_page": 100}).json()["items"]
        return [a["Filename"] for a in items if a.get("Filename")]

    yield Contract(desk, edit, marker, another, files)
    for client in [desk, *clients]:
        client.client.close()
    session.close()


class TestRequestTracker(PortContract):
    """The contract on RT 5 through ``RequestTrackerDesk``."""
