"""The ``ServiceDesk`` port's contract (``tests/support/port_contract.py``) run against the
in-memory desk, without RT: the half of the contract ``make unit`` covers (the real RT half
is ``tests/integration/test_desk_port_contract.py``).
"""

from __future__ import annotations

import pytest

from tests.support.port_contract import Contract, PortContract, memory_contract


@pytest.fixture(params=["memory"])
def contract() -> Contract:
    return memory_contract()


class TestMemoryDesk(PortContract):
    """The contract on ``MemoryDesk``."""
