"""RT REST2 JSON <-> canonical tickets, and reading RT's answer to a write."""

from __future__ import annotations

from datetime import UTC, datetime

from incident_ops.desk.rt import mapping

RANKS = {"urgent": 90, "high": 70, "medium": 50, "low": 10}


def rt_item(**overrides: object) -> dict[str, object]:
    """A search item shaped like RT 5.0.3's answer with our ``fields=`` (trimmed)."""
    item: dict[str, object] = {
        "id": "12", "type": "ticket", "Subject": "短信网关告警 'SMS' down", "Status": "resolved",
        "Priority": "75", "Created": "2026-11-20T01:02:03Z", "LastUpdated": "2026-11-21T04:05:06Z",
        "Resolved": "2026-11-21T04:05:06Z",
        "Queue": {"id": "3", "type": "queue", "Name": "Incidents"},
        "Owner": {"id": "zhang.wei", "Name": "zhang.wei",
                  "EmailAddress": "zhang.wei@ops.example.cn"},
        "Requestor": [{"id": "cust@example.cn", "EmailAddress": "cust@example.cn"}],
        "CustomFields": [
            {"name": "Source", "values": ["monitoring"]},
            {"name": "Escalation", "values": ["l1", "l2"]},
            {"name": "Escalation Due", "values": ["2026-11-22T00:00:00Z"]},
            {"name": "Dispatched By Help Desk", "values": ["yes"]},
            {"name": "First Line Cannot Handle", "values": []},
            {"name": "Close Code", "values": ["made-up-code"]},
            {"name": "Automation", "values": ["close rule-7 · run r1"]},
        ],
        "_hyperlinks": [{"ref": "self", "id": 12, "type": "ticket"},
                        {"ref": "parent", "id": "7", "type": "ticket"}],
    }
    item.update(overrides)
    return item


def test_a_search_item_becomes_a_canonical_ticket() -> None:
    ticket = mapping.ticket_from_rt(rt_item(), ranks=RANKS, version="901")
    assert ticket.id == "12" and ticket.queue == "Incidents" and ticket.status == "resolved"
    assert ticket.priority == "high"  # 75: highest band whose rank <= 75
    assert ticket.source == "monitoring"
    assert ticket.escalation == ("l1", "l2")
    assert ticket.escalation_due == datetime(2026, 11, 22, tzinfo=UTC)
    assert ticket.dispatched_by_helpdesk is True and ticket.first_line_cannot_handle is False
    assert ticket.close_code == "made-up-code"  # unknown codes are kept as they are
    assert ticket.handler == "zhang.wei" and ticket.handler_email == "zhang.wei@ops.example.cn"
    assert ticket.requester == "cust@example.cn"
    assert ticket.duplicate_of == "7"
    assert ticket.resolved_at == datetime(2026, 11, 21, 4, 5, 6, tzinfo=UTC)
    assert ticket.created.tzinfo is not None and ticket.version == "901"
    assert ticket.extra["rt_custom_fields"]["Automation"] == ["close rule-7 · run r1"]


def test_child_links_are_the_duplicates_read_only_when_asked() -> None:
    links = [{"ref": "self", "id": 7, "type": "ticket"},
             {"ref": "child", "id": "31", "type": "ticket"},
             {"ref": "child", "id": "9", "type": "ticket"},
             {"ref": "child", "id": "https://elsewhere/x", "type": "external"},
             {"ref": "child", "id": "9", "type": "ticket"}]
    item = rt_item(id="7", _hyperlinks=links)
    ticket = mapping.ticket_from_rt(item, ranks=RANKS, version="1", with_duplicates=True)
    assert ticket.duplicates == ("9", "31") and ticket.duplicate_of is None
    assert mapping.ticket_from_rt(item, ranks=RANKS, version="1").duplicates is None
    assert mapping.ticket_from_rt(rt_item(), ranks=RANKS, version="1",
                                  with_duplicates=True).duplicates == ()


def test_nobody_owns_an_unassigned_ticket_and_unset_dates_are_none() -> None:
    ticket = mapping.ticket_from_rt(
        rt_item(Owner={"id": "Nobody", "EmailAddress": ""}, Status="new",
                Resolved="1970-01-01T00:00:00Z"), ranks=RANKS, version=None)
    assert ticket.handler is None and ticket.handler_email is None
    assert ticket.resolved_at is None and ticket.closed_at is None


def test_a_bad_date_is_a_warning_not_a_crash() -> None:
    item = rt_item(CustomFields=[{"name": "Completed At", "values": ["not a date"]}])
    ticket = mapping.ticket_from_rt(item, ranks=RANKS, version=None)
    assert ticket.completed_at is None
    assert any("Completed At" in w for w in ticket.extra["warnings"])


def test_priorities_map_to_bands_and_odd_values_are_kept() -> None:
    assert [mapping.priority_code(p, RANKS) for p in (95, "90", 89, 50, 10, 3)] == [
        "urgent", "urgent", "high", "medium", "low", "low"]
    assert mapping.priority_code("n/a", RANKS) == "n/a"


def test_a_change_becomes_rt_fields() -> None:
    body = mapping.write_payload({
        "close_code": "solved", "dispatched_by_helpdesk": False, "priority": "urgent",
        "completed_at": datetime(2026, 1, 2, 11, 0, tzinfo=UTC),
        "automation_keys": ("k1", "k2"), "confirmation": None}, RANKS)
    assert body == {"Priority": 90, "CustomFields": {
        "Close Code": "solved", "Dispatched By Help Desk": "no",
        "Completed At": "2026-01-02 11:00:00", "Automation Keys": ["k1", "k2"],
        "Confirmation": None}}


def test_refusals_in_a_200_answer_name_their_field() -> None:
    body = {"Status": "resolved", "CustomFields": {"Impact": "bogus", "Source": "phone",
                                                   "Close Code": "can't reproduce"}}
    messages = ["Ticket 3: You can't change status from 'closed' to 'resolved'.",
                "Close Code can't reproduce added", "Invalid value for custom field",
                "Source phone added"]
    assert mapping.rejections(messages, body) == [
        ("status", messages[0]), ("impact", "Invalid value for custom field")]


def test_success_messages_are_not_refusals() -> None:
    body = {"Owner": "root", "CustomFields": {"Automation Keys": ["k2"], "Escalation Due": "x"}}
    messages = ["Ticket 2: Owner changed from Nobody to root", "Comments added",
                "k1 is no longer a value for custom field Automation Keys",
                "k2 added as a value for Automation Keys", "Ticket 3 member of Ticket 2.",
                "Escalation Due Fri Jan 02 03:04:05 2026 changed to Tue Feb 03 04:05:06 2026"]
    assert mapping.rejections(messages, body) == []
    assert mapping.rejections(["Ticket 3: That user does not exist"], {"Owner": "x"}) == [
        ("owner", "Ticket 3: That user does not exist")]


# -- times from the desk's own record -----------------------------------------------------

NOBODY_ID = "6"
UNOWNED = {"id": "Nobody", "Name": "Nobody"}


def at(hour: int, minute: int = 0, day: int = 20) -> str:
    return f"2026-11-{day:02d}T{hour:02d}:{minute:02d}:00Z"


def status(when: str, old: str, new: str) -> dict[str, object]:
    return {"Type": "Status", "Field": "Status", "OldValue": old, "NewValue": new,
            "Created": when}


def owner(when: str, old: str, new: str) -> dict[str, object]:
    return {"Type": "SetWatcher", "Field": "Owner", "OldValue": old, "NewValue": new,
            "Created": when}


def with_history(item_status: str, history: list[dict[str, object]], **item: object):
    ticket = mapping.ticket_from_rt(rt_item(Status=item_status, Created=at(1), **item),
                                    ranks=RANKS, version="1")
    return mapping.times_from_history(ticket, history, NOBODY_ID)


def utc(hour: int, minute: int = 0, day: int = 20) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def test_a_closed_tickets_resolution_and_close_come_from_its_status_moves() -> None:
    # RT's Resolved of a closed ticket is its close time, not its resolution time.
    t = with_history("closed", [owner(at(2), NOBODY_ID, "22"),
                                status(at(3), "new", "in-progress"),
                                status(at(5), "in-progress", "resolved"),
                                status(at(9), "resolved", "closed")], Resolved=at(9))
    assert (t.responded_at, t.resolved_at, t.closed_at) == (utc(2), utc(5), utc(9))


def test_a_bounced_ticket_is_resolved_when_it_was_last_resolved() -> None:
    t = with_history("closed", [status(at(2), "new", "assigned-l1"),
                                status(at(3), "assigned-l1", "resolved"),
                                status(at(4), "resolved", "assigned-l1"),  # 100.6 bounce
                                status(at(6), "assigned-l1", "resolved"),
                                status(at(8), "resolved", "closed")], Resolved=at(8),
                     Owner=UNOWNED)
    assert (t.responded_at, t.resolved_at, t.closed_at) == (utc(2), utc(6), utc(8))


def test_a_ticket_closed_straight_from_work_is_resolved_at_its_close() -> None:
    dup = with_history("closed", [status(at(7), "new", "closed")], Resolved=at(7),
                       Owner=UNOWNED)
    assert (dup.responded_at, dup.resolved_at, dup.closed_at) == (utc(7), utc(7), utc(7))
    reopened_then_closed = with_history("closed", [
        status(at(2), "new", "resolved"), status(at(3), "resolved", "in-progress"),
        status(at(5), "in-progress", "closed")], Resolved=at(5))
    assert reopened_then_closed.resolved_at == utc(5)


def test_a_resolved_ticket_is_resolved_at_its_last_move_to_resolved() -> None:
    t = with_history("resolved", [status(at(2), "new", "resolved")], Resolved=at(2))
    assert (t.resolved_at, t.closed_at) == (utc(2), None)


def test_response_is_the_first_owner_or_move_out_of_new() -> None:
    # The owner came first, the status later.
    t = with_history("in-progress", [owner(at(2, 30), NOBODY_ID, "22"),
                                     status(at(4), "new", "in-progress")])
    assert t.responded_at == utc(2, 30)
    # Un-assigning (owner back to Nobody) is no response.
    t = with_history("new", [owner(at(2), "22", NOBODY_ID)], Owner={"id": "Nobody",
                                                                     "Name": "Nobody"})
    assert t.responded_at == utc(1)  # it was created with owner 22
    t = with_history("assigned-l1", [owner(at(2), NOBODY_ID, NOBODY_ID),
                                     status(at(3), "new", "assigned-l1")])
    assert t.responded_at == utc(3)


def test_a_ticket_created_assigned_responded_at_its_creation() -> None:
    copy = with_history("assigned-l1", [])  # a 100.7.3 copy is created assigned, with owner
    assert copy.responded_at == utc(1)
    moved_later = with_history("in-progress", [status(at(5), "assigned-l2", "in-progress")],
                               Owner=UNOWNED)
    assert moved_later.responded_at == utc(1)


def test_a_ticket_nobody_picked_up_has_no_response_yet() -> None:
    t = with_history("new", [], Owner=UNOWNED)
    assert t.responded_at is None


def test_without_history_a_closed_tickets_close_is_rts_resolved_date() -> None:
    t = mapping.ticket_from_rt(rt_item(Status="closed", Resolved=at(9),
                                       LastUpdated=at(11, day=21)), ranks=RANKS, version="1")
    # LastUpdated moves with any later comment; Resolved is the close.
    assert (t.closed_at, t.resolved_at, t.responded_at) == (utc(9), None, None)
