"""The adapter through a faulty network: retries succeed, nothing is written twice, no edit
is lost.

``tests/support/fault_proxy.py`` sits between the adapter and the real RT and drops,
delays or refuses chosen requests. Every test then counts what RT really holds: tickets per
idempotency key, comments and custom-field transactions per ticket.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from incident_ops.desk.port import TicketQuery
from incident_ops.desk.rt import RequestTrackerDesk
from incident_ops.model import TicketChange, TicketDraft
from tests.integration.conftest import DeskAccess, Person, make_desk
from tests.support.fault_proxy import FaultProxy

pytestmark = pytest.mark.integration

NewTicket = Callable[..., str]
CREATE = r"/REST/2.0/ticket$"


def draft(marker: str, key: str) -> TicketDraft:
    return TicketDraft(queue="Incidents", subject=f"rt-adapter-test {marker} retried create",
                       description="once", idempotency_key=f"{marker}-{key}",
                       fields={"system": marker, "source": "monitoring"})


def cf_changes(person: Person, tid: str) -> int:
    return sum(1 for t in person.history(tid) if t.get("Type") == "CustomField")


@pytest.mark.parametrize("fault", ["drop_response", "drop", "delay"])
def test_a_retried_create_makes_one_ticket(faulty_desk: RequestTrackerDesk,
                                           fault_proxy: FaultProxy, person: Person,
                                           marker: str, fault: str) -> None:
    # drop_response: RT created it, the answer was lost; drop: RT never saw the POST;
    # delay: the POST reaches RT after the client timed out and gave up on it.
    fault_proxy.inject(fault, method="POST", path=CREATE, seconds=4.0)  # type: ignore[arg-type]
    tid = faulty_desk.create(draft(marker, fault))
    fault_proxy.wait_idle()  # a delayed POST lands late: count only once it has
    assert person.tickets_with_key(f"{marker}-{fault}") == [tid]
    posts = fault_proxy.reached_desk("POST", CREATE)
    assert len(posts) == 1  # whatever happened, the desk received exactly one create
    assert faulty_desk.get(tid).source == "monitoring"


def test_an_unanswered_conditional_update_is_not_mistaken_for_a_stale_ticket(
        faulty_desk: RequestTrackerDesk, fault_proxy: FaultProxy, new_ticket: NewTicket,
        person: Person) -> None:
    tid = new_ticket()
    read = faulty_desk.get(tid)
    before = cf_changes(person, tid)
    # RT applies the PUT, the answer is lost; the retry then meets If-Match with our own
    # write's version and RT says 412.
    fault_proxy.inject("drop_response", method="PUT", path=rf"/ticket/{tid}$")
    faulty_desk.update(TicketChange(tid, status="resolved", fields={"close_code": "solved"},
                                    expected_version=read.version))
    after = faulty_desk.get(tid)
    assert (after.status, after.close_code) == ("resolved", "solved")
    assert cf_changes(person, tid) == before + 1
    assert len(fault_proxy.reached_desk("PUT", rf"/ticket/{tid}$")) == 2


def test_a_bulk_update_survives_5xx_and_429_without_double_writes_or_lost_edits(
        faulty_desk: RequestTrackerDesk, fault_proxy: FaultProxy, new_ticket: NewTicket,
        mine: TicketQuery, person: Person) -> None:
    ids = [new_ticket() for _ in range(3)]
    read = {t.id: t for t in faulty_desk.search(mine)}
    before = {tid: cf_changes(person, tid) for tid in ids}
    person.put(ids[2], {"CustomFields": {"Close Code": "person's choice"}})
    fault_proxy.inject("status", times=1, status=429, retry_after=1, path="/transactions")
    fault_proxy.inject("status", times=2, status=500, method="PUT", path="/tickets/bulk")
    fault_proxy.inject("drop_response", times=1, method="PUT", path="/tickets/bulk")
    results = faulty_desk.bulk_update([
        TicketChange(t, status="resolved", fields={"close_code": "solved"},
                     expected_version=read[t].version) for t in ids])
    assert [r.outcome for r in results] == ["done", "done", "stale"]
    # the desk received the bulk PUT once; the lost answer was resolved by reading back
    assert len(fault_proxy.reached_desk("PUT", "/tickets/bulk")) == 1
    assert [cf_changes(person, t) - before[t] for t in ids] == [1, 1, 1]
    assert person.cf(ids[2], "Close Code") == ["person's choice"]  # the person's edit stands
    assert [faulty_desk.get(t).status for t in ids] == ["resolved", "resolved", "new"]


def test_an_edit_made_while_a_bulk_answer_is_lost_is_not_overwritten(
        patient_desk: RequestTrackerDesk, fault_proxy: FaultProxy, new_ticket: NewTicket,
        mine: TicketQuery, person: Person) -> None:
    ids = [new_ticket() for _ in range(2)]
    read = {t.id: t for t in patient_desk.search(mine)}
    # RT applies our bulk PUT; before we hear back, a person overrides our close code on
    # the first ticket. Sending the PUT again blindly would silently undo the person's edit.
    fault_proxy.inject("drop_response", method="PUT", path="/tickets/bulk",
                       then=lambda: person.put(ids[0], {"CustomFields": {
                           "Close Code": "person's choice"}}))
    results = patient_desk.bulk_update([
        TicketChange(t, fields={"close_code": "solved"}, expected_version=read[t].version)
        for t in ids])
    assert [r.outcome for r in results] == ["stale", "done"]
    assert [person.cf(t, "Close Code") for t in ids] == [["person's choice"], ["solved"]]
    assert len(fault_proxy.reached_desk("PUT", "/tickets/bulk")) == 1


def test_an_unanswered_comment_is_not_posted_twice(faulty_desk: RequestTrackerDesk,
                                                   fault_proxy: FaultProxy,
                                                   new_ticket: NewTicket,
                                                   person: Person) -> None:
    tid = new_ticket()
    fault_proxy.inject("drop_response", method="POST", path=rf"/ticket/{tid}/comment$")
    faulty_desk.comment(tid, "once only", change=TicketChange(tid, status="in-progress"))
    fault_proxy.wait_idle()
    assert person.count(tid, "Comment") == 1
    assert faulty_desk.get(tid).status == "in-progress"


def test_a_dropped_comment_is_sent_again_once(faulty_desk: RequestTrackerDesk,
                                              fault_proxy: FaultProxy, new_ticket: NewTicket,
                                              person: Person) -> None:
    tid = new_ticket()
    fault_proxy.inject("drop", method="POST", path=rf"/ticket/{tid}/comment$")
    faulty_desk.comment(tid, "sent after the drop")
    assert person.count(tid, "Comment") == 1


def test_reads_ride_out_timeouts_and_throttling(faulty_desk: RequestTrackerDesk,
                                                fault_proxy: FaultProxy,
                                                new_ticket: NewTicket,
                                                mine: TicketQuery) -> None:
    tid = new_ticket()
    fault_proxy.inject("delay", method="GET", path="/tickets", seconds=3.0)
    fault_proxy.inject("status", times=2, status=429, retry_after=0.5, method="GET")
    fault_proxy.inject("status", times=1, status=502, method="GET", path="/transactions")
    assert [t.id for t in faulty_desk.search(mine)] == [tid]
    assert faulty_desk.client.retries_made >= 4


def test_a_call_under_a_deadline_gives_up_at_it_not_at_its_timeouts(
        faulty_desk: RequestTrackerDesk, fault_proxy: FaultProxy, new_ticket: NewTicket) -> None:
    """The engine bounds every desk call of a lease holder by the time its lease has left
    (``desk.port.deadline``): a desk that answers late is left at the deadline, never
    retried past it, so no request of the holder is still waiting when the lease runs out."""
    import time

    from incident_ops.desk.port import TransientDeskError, deadline

    tid = new_ticket("deadline")
    fault_proxy.inject("delay", times=10, method="GET", path=rf"/REST/2.0/ticket/{tid}(\?|$)",
                       seconds=6.0)
    started = time.monotonic()
    with deadline(started + 1.5), pytest.raises(TransientDeskError):
        faulty_desk.get(tid)
    took = time.monotonic() - started
    assert took < 2.5, f"gave up after {took:.1f} s, not at the 1.5 s deadline"
    assert len(fault_proxy.reached_desk("GET", rf"/REST/2.0/ticket/{tid}(\?|$)")) <= 1  # no retry
    fault_proxy.clear()
    fault_proxy.wait_idle()
    assert faulty_desk.get(tid).id == tid  # without a deadline the same call goes through


def test_a_search_page_the_desk_is_too_slow_for_is_asked_for_smaller_and_read_whole(
        fault_proxy: FaultProxy, rt_access: DeskAccess, new_ticket: NewTicket,
        mine: TicketQuery, marker: str) -> None:
    """A loaded desk answers 100 tickets with their custom fields after the read timeout:
    the search asks for the same page with 50, 25, then 12 tickets, waiting 1, 2, 4 s, and
    reads every ticket once (the keyset carries on from the smaller pages)."""
    ids = {new_ticket() for _ in range(14)}
    desk = make_desk(fault_proxy.url, rt_access, page_size=100, timeout=(1.0, 1.0))
    try:
        # Only this search's pages (its query names the marker), at 100, 50 and 25 tickets:
        # forwarded after 5 s, past every read timeout the search may use for them.
        slow = rf"/REST/2\.0/tickets\?query=[^&]*{marker}[^&]*&page=1&per_page=(100|50|25)&"
        fault_proxy.inject("delay", times=20, method="GET", path=slow, seconds=5.0)
        found = [t.id for t in desk.search(mine)]
    finally:
        desk.client.close()
        fault_proxy.wait_idle()
    assert sorted(found) == sorted(ids)  # all of them, none twice
    sizes = [int(re.search(r"per_page=(\d+)", s.path).group(1))  # type: ignore[union-attr]
             for s in fault_proxy.requests if re.search(slow.replace("(100|50|25)", r"\d+"),
                                                        s.path)]
    # (recorded as the desk answered: a delayed page after the ones sent later)
    assert sorted(sizes, reverse=True) == [100, 50, 25, 12, 12], sizes  # 12, then 2
