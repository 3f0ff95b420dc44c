"""The RT queries behind the adapter: ticket pages, versions, "moved since", current state.

Versions. RT's ETag for a ticket is the id of its newest transaction (REST2
``Record/WithETag.pm``), not its LastUpdated, so it cannot be read off a search result.
``versions`` asks RT once per page for the newest transaction of each ticket up to the
last-updated second we read (one ``/transactions`` query for up to 100 tickets instead of a
GET each). It equals the ETag, so any ticket's ``version`` works with ``If-Match`` and with
``moved`` (``id > version``). A transaction written in that very same second after our read
would be counted as read: the one blind spot, under a second wide.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from incident_ops.desk.rt import mapping, ticketsql
from incident_ops.desk.rt.client import RTClient

SEARCH_FIELDS = ("Subject,Status,Priority,Created,LastUpdated,Resolved,Queue,Owner,Requestor,"
                 "CustomFields")
STATE_FIELDS = "Status,Owner,Priority,Subject,CustomFields"  # what a write can set
SUBFIELDS = {"fields[Queue]": "Name", "fields[Owner]": "Name,EmailAddress",
             "fields[Requestor]": "EmailAddress"}
MAX_PER_PAGE = 100  # REST2 caps per_page at 100
LONG_QUERY = 1500  # longer TicketSQL goes in a POST body rather than the URL
# LastUpdated is stamped right after each transaction; look this far back for the newest
# one (scrips can delay the stamp past the second the transaction was written in).
VERSION_WINDOW = timedelta(seconds=5)


class RTReads:
    def __init__(self, client: RTClient) -> None:
        self.client = client

    def search(self, path: str, params: list[tuple[str, Any]]) -> dict[str, Any]:
        if len(str(dict(params).get("query", ""))) > LONG_QUERY:
            resp = self.client.request("POST", path, kind="search", data=params)
        else:
            resp = self.client.request("GET", path, kind="search", params=params)
        data = resp.json()
        return data if isinstance(data, dict) else {}

    def tickets_page(self, sql: str, per_page: int, *, fields: str = SEARCH_FIELDS,
                     order: str = "LastUpdated") -> tuple[list[dict[str, Any]], int | None]:
        """One page of tickets in (order, id) order and RT's count of all matching ``sql``."""
        orders = list(dict.fromkeys((order, "id")))
        params: list[tuple[str, Any]] = [("query", sql), ("page", 1), ("per_page", per_page),
                                         ("fields", fields)]
        params += [("orderby", o) for o in orders] + [("order", "ASC")] * len(orders)
        if "Owner" in fields:
            params += list(SUBFIELDS.items())
        data = self.search("/tickets", params)
        total = data.get("total")
        items = [item for item in data.get("items") or [] if isinstance(item, dict)]
        return items, (int(total) if total is not None and str(total).isdigit() else None)

    def current(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """What a write can set, now, for up to 100 tickets: one query."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        items, _ = self.tickets_page(ticketsql.any_of_ids(wanted), MAX_PER_PAGE,
                                     fields=STATE_FIELDS, order="id")
        return {str(item["id"]): item for item in items}

    def transactions(self, sql: str, stop: Callable[[set[str]], bool]) -> Iterator[dict[str, Any]]:
        """Ticket transactions matching ``sql``, newest first, until ``stop(ticket ids seen)``."""
        seen: set[str] = set()
        page = 1
        while True:
            data = self.search("/transactions", [
                ("query", f"ObjectType = 'RT::Ticket' AND ({sql})"), ("page", page),
                ("per_page", MAX_PER_PAGE), ("fields", "ObjectId"), ("orderby", "id"),
                ("order", "DESC")])
            items = data.get("items") or []
            for item in items:
                seen.add(str(item.get("ObjectId")))
                yield item
            if stop(seen) or len(items) < MAX_PER_PAGE:
                return
            page += 1

    def add_parent_links(self, items: Sequence[dict[str, Any]]) -> None:
        """Fill ``_hyperlinks`` (for duplicate_of) only on tickets that are a MemberOf.

        ``_hyperlinks`` on every ticket of a page costs RT about a third of the page's time;
        asking first which tickets have a parent is one cheap query.
        """
        if not items:
            return
        ids = ticketsql.any_of_ids(str(i["id"]) for i in items)
        members, _ = self.tickets_page(f"{ids} AND MemberOf IS NOT NULL", MAX_PER_PAGE,
                                       fields="id", order="id")
        if not members:
            return
        links, _ = self.tickets_page(ticketsql.any_of_ids(str(m["id"]) for m in members),
                                     MAX_PER_PAGE, fields="_hyperlinks", order="id")
        by_id = {str(link["id"]): link.get("_hyperlinks") for link in links}
        for item in items:
            if str(item["id"]) in by_id:
                item["_hyperlinks"] = by_id[str(item["id"])]

    def versions(self, items: Sequence[Mapping[str, Any]]) -> dict[str, str]:
        """Each ticket's ETag: its newest transaction up to the LastUpdated we read."""
        by_second: dict[str, list[str]] = {}
        for item in items:
            stamp = mapping.parse_rt_datetime(item.get("LastUpdated"))
            if stamp is not None:
                by_second.setdefault(ticketsql.utc_text(stamp), []).append(str(item["id"]))
        if not by_second:
            return {}
        clauses = []
        for second, ids in by_second.items():
            upper = datetime.fromisoformat(second).replace(tzinfo=UTC)
            # ObjectId first: RT/SQLite then narrows by ticket before the date range, about
            # three times faster for a page of tickets updated in different seconds.
            clauses.append(
                f"({ticketsql.any_of_numbers('ObjectId', ids)} AND Created >= "
                f"{ticketsql.date_literal(upper - VERSION_WINDOW)} AND Created <= "
                f"{ticketsql.date_literal(upper)})")
        wanted = {i for ids in by_second.values() for i in ids}
        found: dict[str, str] = {}
        for txn in self.transactions(" OR ".join(clauses), lambda seen: wanted <= seen):
            found.setdefault(str(txn.get("ObjectId")), str(txn.get("id")))
        for missing in wanted - found.keys():  # LastUpdated moved without a transaction
            for txn in self.transactions(f"ObjectId = {missing}", lambda seen: True):
                found[missing] = str(txn.get("id"))
                break
        return found

    def moved(self, expected: Mapping[str, str]) -> set[str]:
        """Ids among ``expected`` (id -> version) with a newer transaction: one query."""
        clauses = [f"(ObjectId = {ticketsql.ticket_id(tid)} AND id > {int(version)})"
                   for tid, version in expected.items() if str(version).isdigit()]
        moved = {tid for tid, version in expected.items() if not str(version).isdigit()}
        if clauses:
            for txn in self.transactions(" OR ".join(clauses), lambda seen: False):
                moved.add(str(txn.get("ObjectId")))
        return moved

    def description(self, tid: str) -> str:
        """The text the ticket was created with: its first plain-text attachment."""
        data = self.search(f"/ticket/{tid}/attachments", [
            ("per_page", 5), ("orderby", "id"), ("order", "ASC"),
            ("fields", "Content,ContentType,TransactionId")])
        items = data.get("items") or []
        create_txn = items[0].get("TransactionId") if items else None
        for item in items:
            if item.get("TransactionId") == create_txn and \
                    str(item.get("ContentType", "")).startswith("text/plain"):
                return str(item.get("Content") or "")
        return ""

    def message_since(self, tid: str, kind: str, since: datetime) -> bool | None:
        """Is there a ``kind`` (Comment) transaction by us on the ticket since ``since``?"""
        user = self.client.user
        who = f" AND Creator = {ticketsql.quote(user)}" if user else ""
        sql = (f"ObjectId = {ticketsql.ticket_id(tid)} AND Type = {ticketsql.quote(kind)} AND "
               f"Created >= {ticketsql.date_literal(since)}{who}")
        return any(True for _ in self.transactions(sql, lambda seen: True)) or None
