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
