"""Every ServiceDesk operation of the RT adapter against the real Request Tracker 5.

Outcomes are read back from RT (through the adapter's ``get`` or raw REST calls made as a
"person"), never inferred from what the adapter said it did.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incident_ops.desk.port import (
    BadQuery,
    DeskAuthError,
    RejectedChange,
    StaleTicket,
    TicketNotFound,
    TicketQuery,
)
from incident_ops.desk.rt import RequestTrackerDesk, ticketsql
from incident_ops.model import Ticket, TicketChange, TicketDraft
from tests.integration.conftest import DeskAccess, Person, make_desk

pytestmark = pytest.mark.integration

NewTicket = Callable[..., str]
TRICKY = "O'Brien \\ 反斜杠 \"引号\" it''s 中文"
INJECTION = "x' OR id>0 OR 'a'='a"


def test_ping_answers_and_a_wrong_password_is_an_auth_error(rt_desk: RequestTrackerDesk,
                                                            rt_access: DeskAccess) -> None:
    ok, message = rt_desk.ping()
    assert ok and "RT 5" in message
    wrong = make_desk(rt_access.url, DeskAccess(rt_access.url, rt_access.user, "wrong"))
    ok, message = wrong.ping()
    assert not ok and "DeskAuthError" in message and "wrong" not in message
    with pytest.raises(DeskAuthError):
        wrong.get("1")
    assert wrong.client.retries_made == 0  # an auth failure is not retried


def test_create_then_get_round_trips_every_kind_of_field(rt_desk: RequestTrackerDesk,
                                                         marker: str) -> None:
    due = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    draft = TicketDraft(
        queue="Incidents", subject=f"rt-adapter-test {marker} 短信网关 {TRICKY}",
        description="描述", idempotency_key=f"{marker}-create", priority="urgent",
        status="assigned-l2", requester="caller@example.cn",
        fields={"system": marker, "source": "monitoring", "impact": "major",
                "dispatched_by_helpdesk": True, "escalation": ("l1", "l2"),
                "escalation_due": due, "config_item": TRICKY})
    tid = rt_desk.create(draft)
    ticket = rt_desk.get(tid)
    assert ticket.subject == draft.subject and ticket.status == "assigned-l2"
    assert ticket.description == "描述"
    assert ticket.priority == "urgent" and ticket.requester == "caller@example.cn"
    assert (ticket.source, ticket.impact, ticket.config_item) == ("monitoring", "major", TRICKY)
    assert ticket.dispatched_by_helpdesk is True and ticket.escalation == ("l1", "l2")
    assert ticket.escalation_due == due and ticket.idempotency_key == f"{marker}-create"
    assert ticket.version and ticket.version.isdigit()
    # the same key again is the same ticket, and find_by_key names it
    assert rt_desk.create(draft) == tid
    assert rt_desk.find_by_key(f"{marker}-create") == tid
    assert rt_desk.find_by_key(f"{marker}-create-other") is None


def test_search_finds_quotes_and_chinese_exactly_and_injection_finds_nothing(
        rt_desk: RequestTrackerDesk, new_ticket: NewTicket, mine: TicketQuery) -> None:
    tricky = new_ticket(config_item=TRICKY)
    lookalike = new_ticket(config_item="CF.{Source}")
    new_ticket(config_item=TRICKY.upper() + " suffix")
    found = [t.id for t in rt_desk.search(TicketQuery(fields={**mine.fields,
                                                              "config_item": TRICKY}))]
    assert found == [tricky]
    found = [t.id for t in rt_desk.search(TicketQuery(fields={**mine.fields,
                                                              "config_item": "CF.{Source}"}))]
    assert found == [lookalike]
    assert list(rt_desk.search(TicketQuery(fields={"config_item": INJECTION}))) == []
    assert list(rt_desk.search(TicketQuery(fields={"system": INJECTION}))) == []


def test_search_pages_past_one_page_without_skipping_a_ticket_edited_meanwhile(
        rt_access: DeskAccess, new_ticket: NewTicket, mine: TicketQuery,
        person: Person) -> None:
    ids = [new_ticket() for _ in range(5)]
    desk = make_desk(rt_access.url, rt_access, page_size=2)
    seen = []
    for ticket in desk.search(mine):
        if not seen:
            # a person edits the first ticket while we page: it moves to the end of the
            # LastUpdated order, which would make offset paging skip an unseen ticket
            person.put(ticket.id, {"CustomFields": {"Faulty Vendor": "edited meanwhile"}})
        seen.append(ticket.id)
    assert sorted(seen, key=int) == ids and len(seen) == len(set(seen))
    assert desk.client.requests_made >= 6  # 3+ pages, each with its version query


def test_search_versions_catch_every_later_edit_in_bulk_single_and_comment_writes(
        rt_desk: RequestTrackerDesk, new_ticket: NewTicket, mine: TicketQuery,
        person: Person) -> None:
    ids = [new_ticket() for _ in range(4)]
    requests_before = rt_desk.client.requests_made
    read = {t.id: t for t in rt_desk.search(mine)}
    # one page: the desk's newest transaction, the page, which of them are duplicates
    assert rt_desk.client.requests_made - requests_before == 3
    assert len({read[t].version for t in ids}) == 1 and str(read[ids[0]].version)[0] == "#"
    for tid in (ids[1], ids[3]):
        person.put(tid, {"CustomFields": {"Close Code": "person's choice"}})

    def close(tid: str) -> TicketChange:
        return TicketChange(tid, status="resolved", fields={"close_code": "solved"},
                            expected_version=read[tid].version)

    assert [r.outcome for r in rt_desk.bulk_update([close(ids[0]), close(ids[1])])] == [
        "done", "stale"]
    rt_desk.update(close(ids[2]))  # the version becomes the ticket's ETag for If-Match
    with pytest.raises(StaleTicket):
        rt_desk.update(close(ids[3]))
    with pytest.raises(StaleTicket):
        rt_desk.comment(ids[3], "late", change=close(ids[3]))
    after = {tid: rt_desk.get(tid) for tid in ids}
    assert [(after[t].status, after[t].close_code) for t in ids] == [
        ("resolved", "solved"), ("new", "person's choice"), ("resolved", "solved"),
        ("new", "person's choice")]
    assert person.count(ids[3], "Comment") == 0


def test_a_light_search_reads_the_duplicate_link_but_no_custom_fields(
        rt_desk: RequestTrackerDesk, new_ticket: NewTicket, mine: TicketQuery,
        marker: str) -> None:
    master, dup, alone = new_ticket(), new_ticket(), new_ticket()
    rt_desk.link_duplicate(dup, master)

    def light(**criteria: Any) -> dict[str, Ticket]:
        return {t.id: t for t in rt_desk.search(TicketQuery(
            queue=None, ids=[master, dup, alone], custom_fields=False, **criteria))}

    found = light()
    assert all(t.partial and t.system is None for t in found.values())
    assert found[dup].duplicate_of == master and found[dup].version
    full = {t.id: t for t in rt_desk.search(mine)}
    assert not full[dup].partial and full[dup].system == marker
    assert sorted(light(has_duplicates=True)) == [master]
    assert sorted(light(has_duplicates=False), key=int) == [dup, alone]
    # Links read on the masters instead: each ticket's duplicates, not whose duplicate it is.
    both = light(with_duplicates=True, master_links=False)
    assert {t: both[t].duplicates for t in both} == {master: (dup,), dup: (), alone: ()}
    assert both[dup].duplicate_of is None and found[master].duplicates is None
    with pytest.raises(BadQuery):  # custom-field criteria need the custom fields
        list(rt_desk.search(TicketQuery(fields=mine.fields, custom_fields=False)))
    with pytest.raises(BadQuery):  # past 50 joins RT would answer "nothing", not an error
        list(rt_desk.search(TicketQuery(member_of=[str(i) for i in range(1, 52)])))


def test_search_criteria(rt_desk: RequestTrackerDesk, new_ticket: NewTicket,
                         mine: TicketQuery) -> None:
    urgent = new_ticket(priority="urgent", source="phone", status="resolved")
    low = new_ticket(priority="low", source="monitoring", completed_at=datetime(
        2026, 1, 1, tzinfo=UTC))
    base = mine.fields

    def ids(**criteria: object) -> list[str]:
        query = TicketQuery(fields=dict(base), **criteria)  # type: ignore[arg-type]
        return [t.id for t in rt_desk.search(query)]

    assert ids(priorities=["urgent"]) == [urgent]
    assert ids(sources=["monitoring"]) == [low]
    assert ids(statuses=["resolved"]) == [urgent]
    assert ids(open_only=True) == [low]
    assert ids(field_is_set=["completed_at"]) == [low]
    assert ids(field_unset=["completed_at"]) == [urgent]
    assert ids(field_before={"completed_at": datetime(2026, 1, 2, tzinfo=UTC)}) == [low]
    assert ids(ids=[urgent]) == [urgent]
    assert ids(updated_since=datetime(2000, 1, 1, tzinfo=UTC)) == [urgent, low]


def test_update_writes_status_owner_and_fields(rt_desk: RequestTrackerDesk,
                                               new_ticket: NewTicket) -> None:
    tid = new_ticket()
    before = rt_desk.get(tid)
    completed = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
    rt_desk.update(TicketChange(
        tid, status="resolved", owner="root", expected_version=before.version,
        fields={"close_code": "solved", "automation_keys": ("k1", "k2"),
                "completed_at": completed}))
    after = rt_desk.get(tid)
    assert (after.status, after.handler, after.close_code) == ("resolved", "root", "solved")
    assert after.automation_keys == ("k1", "k2") and after.resolved_at is not None
    assert after.completed_at == completed
    assert after.version != before.version


def test_a_stale_update_is_refused_and_the_persons_edit_kept(
        rt_desk: RequestTrackerDesk, new_ticket: NewTicket, person: Person) -> None:
    tid = new_ticket()
    read = rt_desk.get(tid)
    person.put(tid, {"CustomFields": {"Close Code": "person's choice"}})
    with pytest.raises(StaleTicket) as caught:
        rt_desk.update(TicketChange(tid, status="resolved", fields={"close_code": "solved"},
                                    expected_version=read.version))
    assert caught.value.ticket_id == tid
    after = rt_desk.get(tid)
    assert (after.status, after.close_code) == ("new", "person's choice")


def test_bulk_update_writes_many_and_isolates_stale_and_failed(
        rt_desk: RequestTrackerDesk, new_ticket: NewTicket, mine: TicketQuery,
        person: Person) -> None:
    ids = [new_ticket() for _ in range(4)]
    read = {t.id: t for t in rt_desk.search(mine)}
    person.put(ids[1], {"CustomFields": {"Close Code": "person's choice"}})
    changes = [TicketChange(t, status="resolved", fields={"close_code": "solved"},
                            expected_version=read[t].version) for t in ids[:3]]
    changes.append(TicketChange(ids[3], fields={"impact": "not-an-impact"}))
    changes.append(TicketChange("99999999", status="resolved"))
    requests_before = rt_desk.client.requests_made
    results = rt_desk.bulk_update(changes)
    assert [r.outcome for r in results] == ["done", "stale", "done", "failed", "failed"]
    assert "impact" in results[3].message
    assert rt_desk.client.requests_made - requests_before == 2  # one re-check, one bulk PUT
    after = {t.id: t for t in rt_desk.search(mine)}
    assert [(after[t].status, after[t].close_code) for t in ids[:3]] == [
        ("resolved", "solved"), ("new", "person's choice"), ("resolved", "solved")]
    assert after[ids[3]].impact is None


def test_comment_with_a_change_is_one_call_and_a_stale_one_writes_nothing(
        rt_desk: RequestTrackerDesk, new_ticket: NewTicket, person: Person) -> None:
    tid = new_ticket()
    read = rt_desk.get(tid)
    rt_desk.comment(tid, "规则 100.7.2 已执行 / rule acted", change=TicketChange(
        tid, status="in-progress", fields={"confirmation": "pending"},
        expected_version=read.version))
    after = rt_desk.get(tid)
    assert (after.status, after.confirmation) == ("in-progress", "pending")
    assert person.count(tid, "Comment") == 1
    with pytest.raises(StaleTicket):
        rt_desk.comment(tid, "late", change=TicketChange(tid, status="resolved",
                                                         expected_version=read.version))
    assert person.count(tid, "Comment") == 1 and rt_desk.get(tid).status == "in-progress"


def test_duplicate_links_are_idempotent_both_ways(rt_desk: RequestTrackerDesk,
                                                  new_ticket: NewTicket,
                                                  mine: TicketQuery, person: Person) -> None:
    master, dup = new_ticket(), new_ticket()
    rt_desk.link_duplicate(dup, master)
    rt_desk.link_duplicate(dup, master)
    assert rt_desk.get(dup).duplicate_of == master
    found = list(rt_desk.search(TicketQuery(fields=mine.fields, member_of=[master])))
    assert [(t.id, t.duplicate_of) for t in found] == [(dup, master)]
    assert {t.id: t.duplicate_of for t in rt_desk.search(mine)} == {master: None, dup: master}
    assert sum(1 for t in person.history(dup) if t.get("Type") == "AddLink") == 1
    rt_desk.unlink_duplicate(dup, master)
    rt_desk.unlink_duplicate(dup, master)
    assert rt_desk.get(dup).duplicate_of is None
    with pytest.raises(TicketNotFound):
        rt_desk.link_duplicate(dup, "99999999")


def test_attach_puts_the_file_in_the_history(rt_desk: RequestTrackerDesk,
                                             new_ticket: NewTicket, person: Person) -> None:
    tid = new_ticket()
    content = "报告 report\n".encode()
    rt_desk.attach(tid, "major-report.txt", content, "text/plain", note="附件 attached")
    resp = person.session.get(f"{person.api}/ticket/{tid}/attachments", timeout=60,
                              params={"fields": "Filename,ContentType", "per_page": 100})
    files = [a for a in resp.json()["items"] if a.get("Filename") == "major-report.txt"]
    assert len(files) == 1
    got = person.session.get(f"{person.api}/attachment/{files[0]['id']}", timeout=60).json()
    assert base64.b64decode(got["Content"]) == content


def test_user_email_is_looked_up_once(rt_desk: RequestTrackerDesk, person: Person) -> None:
    expected = person.session.get(f"{person.api}/user/root", timeout=60).json()["EmailAddress"]
    assert rt_desk.user_email("root") == expected
    made = rt_desk.client.requests_made
    assert rt_desk.user_email("root") == expected and rt_desk.client.requests_made == made
    assert rt_desk.user_email("no-such-user-x") is None


def test_the_web_session_is_used_and_a_lost_one_falls_back(rt_desk: RequestTrackerDesk,
                                                          rt_access: DeskAccess,
                                                          new_ticket: NewTicket) -> None:
    tid = new_ticket()
    jar = rt_desk.client.session.cookies
    sessions = [c for c in jar if c.name.startswith("RT_SID_")]
    assert sessions, "the client logged in to the web UI once"
    for cookie in sessions:
        cookie.value = "0" * 32  # RT no longer knows this session
    assert rt_desk.get(tid).id == tid  # the Authorization header still gets us in
    wrong = make_desk(rt_access.url, DeskAccess(rt_access.url, rt_access.user, "wrong"))
    for cookie in sessions:
        wrong.client.session.cookies.set_cookie(cookie)
    with pytest.raises(DeskAuthError):  # RT answers a stale cookie with a redirect
        wrong.get(tid)


def test_errors_map_to_the_port(rt_desk: RequestTrackerDesk, new_ticket: NewTicket) -> None:
    with pytest.raises(TicketNotFound):
        rt_desk.get("99999999")
    with pytest.raises(TicketNotFound):
        rt_desk.update(TicketChange("99999999", status="resolved"))
    tid = new_ticket()
    with pytest.raises(RejectedChange) as caught:
        rt_desk.update(TicketChange(tid, fields={"impact": "catastrophic",
                                                 "close_code": "solved"}))
    assert caught.value.field == "impact" and caught.value.ticket_id == tid
    assert rt_desk.get(tid).impact is None
    with pytest.raises(RejectedChange) as caught:
        rt_desk.create(TicketDraft(queue="Incidents", subject="rt-adapter-test bad select",
                                   description="", idempotency_key=f"bad-select-{tid}",
                                   fields={"impact": "catastrophic"}))
    assert caught.value.field == "impact"
    assert rt_desk.find_by_key(f"bad-select-{tid}") is None  # nothing was created


def test_the_lifecycle_refuses_leaving_closed(rt_desk: RequestTrackerDesk,
                                              new_ticket: NewTicket) -> None:
    tid = new_ticket(status="closed")
    with pytest.raises(RejectedChange) as caught:
        rt_desk.update(TicketChange(tid, status="resolved"))
    assert caught.value.field == "status" and "closed" in str(caught.value)
    with pytest.raises(RejectedChange) as caught:
        rt_desk.update(TicketChange(tid, status="no-such-status"))
    assert caught.value.field == "status"
    assert rt_desk.get(tid).status == "closed"


VALUES = st.text(
    alphabet=st.one_of(st.sampled_from(list("'\"\\%_()=<> ORANDcf.{}中文事件")),
                       st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"))),
    min_size=1, max_size=30).filter(lambda v: v.strip() == v)


@pytest.fixture
def one_ticket(new_ticket: NewTicket) -> str:
    """One ticket for every example of a property test (fixtures run once per test)."""
    return new_ticket()


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=VALUES)
def test_any_value_is_found_exactly_by_real_rt(rt_desk: RequestTrackerDesk, one_ticket: str,
                                               mine: TicketQuery, value: str) -> None:
    tid = one_ticket
    rt_desk.update(TicketChange(tid, fields={"config_item": value}))
    found = [t.id for t in rt_desk.search(TicketQuery(fields={**mine.fields,
                                                              "config_item": value}))]
    assert found == [tid]
    rt_desk.client.request("PUT", f"/ticket/{tid}", kind="write", json={"Subject": value})
    subject = f"{ticketsql.equals('Subject', value)} AND id = {tid}"
    items, _ = rt_desk.reads.tickets_page(subject, 10, fields="Subject")
    assert [i["Subject"] for i in items if i["Subject"] == value] == [value]


def test_a_history_search_reads_the_desks_own_times_in_one_query_per_page(
        rt_desk: RequestTrackerDesk, new_ticket: NewTicket, person: Person,
        marker: str) -> None:
    picked, closed, waiting = new_ticket("picked up"), new_ticket("closed"), new_ticket("new")
    person.put(picked, {"Owner": "li.na"})
    person.put(picked, {"Status": "in-progress"})
    person.put(closed, {"Status": "resolved"})
    person.put(closed, {"Status": "closed"})
    history = {t: rt_desk.client.json("GET", f"/ticket/{t}/history", params={
        "per_page": 100, "fields": "Type,Field,NewValue,Created"})["items"]
        for t in (picked, closed)}

    def moved(tid: str, field: str, value: str) -> datetime:
        [when] = [h["Created"] for h in history[tid]
                  if h.get("Field") == field and h.get("Type") != "SetWatcher"
                  and (h.get("NewValue") == value or field == "Owner")]
        return datetime.fromisoformat(when.replace("Z", "+00:00"))

    before = rt_desk.client.requests_made
    got = {t.id: t for t in rt_desk.search(TicketQuery(fields={"system": marker},
                                                       history=True))}
    requests = rt_desk.client.requests_made - before
    assert got[picked].responded_at == moved(picked, "Owner", "li.na")
    assert (got[closed].resolved_at, got[closed].closed_at, got[closed].responded_at) == (
        moved(closed, "Status", "resolved"), moved(closed, "Status", "closed"),
        moved(closed, "Status", "resolved"))
    assert got[waiting].responded_at is None
    plain = {t.id: t for t in rt_desk.search(TicketQuery(fields={"system": marker}))}
    assert plain[closed].resolved_at is None and plain[closed].closed_at == \
        got[closed].closed_at
    # The page, its version, which tickets are duplicates, Nobody's id (once per adapter)
    # and one history query for the whole page.
    assert requests == 5, requests
