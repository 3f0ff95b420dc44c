"""The ``ServiceDesk`` port's contract, stated once and run against both implementations:
the in-memory desk the engine's unit tests use (``tests/unit/test_memory_desk_contract.py``,
in ``make unit``) and the real RT (``tests/integration/test_desk_port_contract.py``).
Whatever the engine relies on is stated here, so the fake cannot drift from the real desk.

A test module runs the contract by subclassing ``PortContract`` as a ``Test*`` class and
providing a ``contract`` fixture that yields a ``Contract``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from incident_ops.desk.memory import MemoryDesk
from incident_ops.desk.port import (
    RejectedChange,
    ServiceDesk,
    StaleTicket,
    TicketNotFound,
    TicketQuery,
)
from incident_ops.model import TicketChange, TicketDraft


@dataclass
class Contract:
    desk: ServiceDesk
    edit: Callable[[str, str], None]  # a person changes the ticket's subject
    marker: str
    new_desk: Callable[[], ServiceDesk]  # another client of the same desk
    files: Callable[[str], list[str]]  # the names of the files attached to a ticket

    def new(self, subject: str = "t", **fields: Any) -> str:
        status = fields.pop("status", None)
        return self.desk.create(TicketDraft(
            queue="Incidents", subject=f"contract {self.marker} {subject}",
            description="port contract", idempotency_key=f"{self.marker}:{uuid.uuid4().hex}",
            priority="high", status=status, requester="req@example.cn",
            fields={"system": self.marker, **fields}))

    def mine(self, **criteria: Any) -> list[str]:
        query = TicketQuery(queue=None, fields={"system": self.marker}, **criteria)
        return sorted((t.id for t in self.desk.search(query)), key=int)


def memory_contract() -> Contract:
    """The contract's view of a fresh in-memory desk."""
    memory = MemoryDesk()
    return Contract(memory, lambda tid, subject: memory.edit(tid, subject=subject),
                    f"port-{uuid.uuid4().hex[:10]}", lambda: memory,
                    lambda tid: list(memory.files(tid)))


class PortContract:
    """The contract's tests (collected through a ``Test*`` subclass)."""

    def test_create_is_once_per_key_and_get_reads_it_back(self, contract: Contract) -> None:
        draft = TicketDraft(queue="Incidents", subject=f"contract {contract.marker} once",
                            description="d", idempotency_key=f"{contract.marker}:once",
                            priority="urgent", status="assigned-l1", owner="li.na",
                            requester="someone@example.cn",
                            fields={"system": contract.marker, "close_code": "solved",
                                    "escalation": ("at-risk",)})
        first = contract.desk.create(draft)
        assert contract.desk.create(draft) == first
        assert contract.desk.find_by_key(draft.idempotency_key) == first
        t = contract.desk.get(first)
        assert (t.subject, t.status, t.priority, t.handler, t.requester) == (
            draft.subject, "assigned-l1", "urgent", "li.na", "someone@example.cn")
        assert (t.close_code, t.escalation, t.idempotency_key) == (
            "solved", ("at-risk",), draft.idempotency_key)
        with pytest.raises(TicketNotFound):
            contract.desk.get("99999999")


    def test_searches_select_by_status_field_and_id(self, contract: Contract) -> None:
        a = contract.new("a", status="resolved")
        b = contract.new("b", status="new")
        assert contract.mine(statuses=["resolved"]) == [a]
        assert contract.mine(open_only=True) == [b]
        assert contract.mine(ids=[b]) == [b]


    def test_a_write_on_an_old_version_is_refused_and_the_persons_edit_kept(
            self, contract: Contract) -> None:
        tid = contract.new()
        read = contract.desk.get(tid)
        contract.edit(tid, "edited by a person")
        with pytest.raises(StaleTicket):
            contract.desk.update(TicketChange(tid, status="resolved",
                                              expected_version=read.version))
        after = contract.desk.get(tid)
        assert (after.subject, after.status) == ("edited by a person", read.status)
        # A search's version is as good as a read's.
        (found,) = list(contract.desk.search(TicketQuery(queue=None, ids=[tid])))
        contract.desk.update(TicketChange(tid, status="resolved", expected_version=found.version))
        assert contract.desk.get(tid).status == "resolved"


    def test_bulk_updates_write_the_current_and_refuse_the_moved(self, contract: Contract) -> None:
        a, b = contract.new("a"), contract.new("b")
        versions = {t.id: t.version for t in contract.desk.search(TicketQuery(queue=None,
                                                                              ids=[a, b]))}
        contract.edit(b, "moved on")
        results = contract.desk.bulk_update([
            TicketChange(a, status="closed", fields={"close_code": "solved"},
                         expected_version=versions[a]),
            TicketChange(b, status="closed", expected_version=versions[b])])
        assert [r.outcome for r in results] == ["done", "stale"]
        assert contract.desk.get(a).close_code == "solved"
        assert contract.desk.get(b).status == "new"


    def test_a_comment_with_a_change_on_an_old_version_writes_nothing(
            self, contract: Contract) -> None:
        tid = contract.new()
        read = contract.desk.get(tid)
        contract.edit(tid, "moved on")
        with pytest.raises(StaleTicket):
            contract.desk.comment(tid, "should not land", change=TicketChange(
                tid, fields={"automation_keys": ("k1",)}, expected_version=read.version))
        assert contract.desk.get(tid).automation_keys == ()


    def test_closed_is_final(self, contract: Contract) -> None:
        tid = contract.new(status="resolved")
        contract.desk.update(TicketChange(tid, status="closed"))
        with pytest.raises(RejectedChange):
            contract.desk.update(TicketChange(tid, status="assigned-l1"))
        assert contract.desk.get(tid).status == "closed"


    def test_links_are_idempotent_and_loops_refused(self, contract: Contract) -> None:
        master, dup = contract.new("master"), contract.new("dup")
        contract.desk.link_duplicate(dup, master)
        contract.desk.link_duplicate(dup, master)
        assert contract.desk.get(dup).duplicate_of == master
        with pytest.raises(RejectedChange):
            contract.desk.link_duplicate(master, dup)
        with pytest.raises(RejectedChange):
            contract.desk.link_duplicate(dup, dup)
        light = list(contract.desk.search(TicketQuery(queue=None, ids=[dup],
                                                      custom_fields=False)))
        assert [(t.partial, t.duplicate_of) for t in light] == [(True, master)]
        (m,) = list(contract.desk.search(TicketQuery(queue=None, ids=[master],
                                                     with_duplicates=True)))
        assert m.duplicates == (dup,)
        contract.desk.unlink_duplicate(dup, master)
        contract.desk.unlink_duplicate(dup, master)
        assert contract.desk.get(dup).duplicate_of is None
        contract.desk.add_reference(dup, master)
        contract.desk.add_reference(dup, master)


    def test_a_file_is_attached_once_per_name(self, contract: Contract) -> None:
        tid = contract.new()
        for _ in range(2):
            contract.desk.attach(tid, "report.html", b"<p>r</p>", "text/html", note="the report")
        assert contract.files(tid) == ["report.html"]


    def test_the_history_mark_only_grows(self, contract: Contract) -> None:
        before = contract.desk.history_mark()
        contract.new()
        assert contract.desk.history_mark() > before


    def test_concurrent_lease_claims_agree_and_a_release_frees_it(self, contract: Contract) -> None:
        scope = f"contract-{contract.marker}"
        desks = [contract.new_desk() for _ in range(4)]
        contract.desk.claim_lease(scope, "warm-up", 1)  # the lease ticket exists before the race
        contract.desk.release_lease(scope, "warm-up")
        holders: dict[str, str | None] = {}

        def claim(i: int) -> None:
            holders[f"run-{i}"] = desks[i].claim_lease(scope, f"run-{i}", 60).holder

        threads = [threading.Thread(target=claim, args=(i,)) for i in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=60)
        assert len(set(holders.values())) == 1 and set(holders.values()) <= set(holders)
        winner = next(iter(set(holders.values())))
        assert winner is not None
        contract.desk.release_lease(scope, winner)
        assert contract.desk.claim_lease(scope, "next", 60).holder == "next"
