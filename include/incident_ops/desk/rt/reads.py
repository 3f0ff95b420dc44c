"""The RT queries behind the adapter: ticket pages, versions, "moved since", current state.

Versions. RT's ETag for a ticket is the id of its newest transaction (REST2
``Record/WithETag.pm``), not its LastUpdated, so it cannot be read off a search result, and
asking RT for it costs a ``/transactions`` query per page as large as the page itself when
the page has no custom fields. A search reads something cheaper just before each page: the
desk's newest ticket transaction id, ``T`` (one tiny query). Transaction ids only grow, so
every ticket of the page is "as of transaction ``T``": its version is ``"#T"``, and "changed
since it was read" is exactly "has a transaction with an id above ``T``". ``moved`` checks
that for up to a hundred tickets in one query (``id > T``, or ``id > ETag`` for a version
read by ``get``); a single conditional write turns ``#T`` into the ticket's ETag (its newest
transaction, if not above ``T``) for ``If-Match``. No clocks are involved. On SQLite writes
are serial, so this is exact; on a desk database with concurrent writers a transaction that
was being committed at the very moment of the read could carry an id below ``T`` and be
missed, a window of milliseconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from incident_ops.desk.port import TransientDeskError, call_deadline
from incident_ops.desk.rt import ticketsql
from incident_ops.desk.rt.client import RTClient, SlowAnswer
from incident_ops.text import storable

CORE_FIELDS = "Subject,Status,Priority,Created,LastUpdated,Resolved,Queue,Owner,Requestor"
SEARCH_FIELDS = CORE_FIELDS + ",CustomFields"
STATE_FIELDS = "Status,Owner,Priority,Subject,CustomFields"  # what a write can set
SUBFIELDS = {"fields[Queue]": "Name", "fields[Owner]": "Name,EmailAddress",
             "fields[Requestor]": "EmailAddress"}
MAX_PER_PAGE = 100  # REST2 caps per_page at 100
# A search page the desk does not answer in time is asked for again, smaller (``Pace``).
MIN_PAGE_SIZE = 10
SLOW_READ_FACTOR = 4  # the longest read timeout of a slow page, times the client's
# A search whose URL would be longer goes in a POST body. GET is much cheaper: RT 5 accepts
# the adapter's web-session cookie only on safe methods, so a POST authenticates with the
# password (a bcrypt check, ~230 ms on the embedded desk: 16 ms GET vs 244 ms POST for the
# same search). 6000 keeps the request line under the 8 KB that Apache (LimitRequestLine
# 8190) and nginx (large_client_header_buffers 8k) accept in front of RT; a 100-ticket
# check (``moved``) is about 3.3 KB.
LONG_URL = 6000
log = logging.getLogger(__name__)
AS_OF = "#"  # a search version: "#<the desk's newest transaction id before the read>"


class RTReads:
    def __init__(self, client: RTClient) -> None:
        self.client = client
        self._as_of = 0  # the newest transaction id seen by ``as_of``
        self._lock = threading.Lock()

    def search(self, path: str, params: list[tuple[str, Any]], **slow: Any) -> dict[str, Any]:
        """``slow``: ``read_timeout`` / ``on_read_timeout`` for ``RTClient.request``."""
        if len(urlencode(params)) > LONG_URL:
            resp = self.client.request("POST", path, kind="search", data=params,
                                       **slow)
        else:
            resp = self.client.request("GET", path, kind="search", params=params, **slow)
        data = resp.json()
        return data if isinstance(data, dict) else {}

    def tickets_page(self, sql: str, per_page: int, *, fields: str = SEARCH_FIELDS,
                     order: str = "LastUpdated", **slow: Any
                     ) -> tuple[list[dict[str, Any]], int | None]:
        """One page of tickets in (order, id) order and RT's count of all matching ``sql``."""
        orders = list(dict.fromkeys((order, "id")))
        params: list[tuple[str, Any]] = [("query", sql), ("page", 1), ("per_page", per_page),
                                         ("fields", fields)]
        params += [("orderby", o) for o in orders] + [("order", "ASC")] * len(orders)
        if "Owner" in fields:
            params += list(SUBFIELDS.items())
        data = self.search("/tickets", params, **slow)
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

    def transactions(self, sql: str, stop: Callable[[set[str]], bool], *,
                     per_page: int = MAX_PER_PAGE) -> Iterator[dict[str, Any]]:
        """Ticket transactions matching ``sql``, newest first, until ``stop(ticket ids seen)``."""
        seen: set[str] = set()
        page = 1
        while True:
            data = self.search("/transactions", [
                ("query", f"ObjectType = 'RT::Ticket' AND ({sql})"), ("page", page),
                ("per_page", per_page), ("fields", "ObjectId"), ("orderby", "id"),
                ("order", "DESC")])
            items = data.get("items") or []
            for item in items:
                seen.add(str(item.get("ObjectId")))
                yield item
            if stop(seen) or len(items) < per_page:
                return
            page += 1

    def history(self, ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """The status and owner transactions of up to 100 tickets that ``mapping.
        times_from_history`` reads, oldest first, by ticket id.

        One query per 100 transactions, by ticket id: RT indexes transactions on their
        ticket, not on their date, so a search by date would read the whole table per page.
        Keyset-paged on the transaction id (never RT's page offset). Only the moves that
        matter are read (out of new, into resolved or closed); RT 5 records an owner change
        twice (the column's ``Set`` and the role's ``SetWatcher``), the latter is left out.
        """
        wanted = ticketsql.any_of_numbers("ObjectId", [ticketsql.ticket_id(i) for i in ids])
        out: dict[str, list[dict[str, Any]]] = {str(i): [] for i in ids}
        moves = ("(Field = 'Status' AND (OldValue = 'new' OR NewValue = 'resolved' OR "
                 "NewValue = 'closed'))")
        owners = "(Field = 'Owner' AND Type != 'SetWatcher')"
        after = 0
        while True:
            data = self.search("/transactions", [
                ("query", f"ObjectType = 'RT::Ticket' AND {wanted} AND "
                          f"({moves} OR {owners}) AND id > {after}"),
                ("page", 1), ("per_page", MAX_PER_PAGE), ("orderby", "id"), ("order", "ASC"),
                ("fields", "ObjectId,Type,Field,OldValue,NewValue,Created")])
            items = [i for i in data.get("items") or [] if isinstance(i, dict)]
            for item in items:
                out.setdefault(str(item.get("ObjectId")), []).append(item)
            if len(items) < MAX_PER_PAGE:
                return out
            after = int(items[-1]["id"])

    def add_links(self, items: Sequence[dict[str, Any]], *, masters: bool = True,
                  duplicates: bool = False) -> None:
        """Fill ``_hyperlinks`` only on tickets that have the links asked for: ``masters``,
        those that are a MemberOf (for duplicate_of); ``duplicates``, those that have
        members. ``_hyperlinks`` costs RT ~4 ms a ticket; asking first which tickets have
        such links is one cheap query each.
        """
        if not items or not (masters or duplicates):
            return
        ids = ticketsql.any_of_ids(str(i["id"]) for i in items)
        wanted: set[str] = set()
        for wanted_links, clause in ((masters, "MemberOf"), (duplicates, "HasMember")):
            if wanted_links:
                found, _ = self.tickets_page(f"{ids} AND {clause} IS NOT NULL", MAX_PER_PAGE,
                                             fields="id", order="id")
                wanted |= {str(f["id"]) for f in found}
        if not wanted:
            return
        links, _ = self.tickets_page(ticketsql.any_of_ids(sorted(wanted, key=int)),
                                     MAX_PER_PAGE, fields="_hyperlinks", order="id")
        by_id = {str(link["id"]): link.get("_hyperlinks") for link in links}
        for item in items:
            if str(item["id"]) in by_id:
                item["_hyperlinks"] = by_id[str(item["id"])]

    def as_of(self) -> str:
        """The version of every ticket read after this call: ``#`` + the desk's newest ticket
        transaction id (module doc).

        RT counts what a search matches, so the query only looks above the last id this
        adapter saw: the first call per adapter counts the desk's transactions, later ones
        only the new ones.
        """
        floor = self._as_of
        for txn in self.transactions(f"id > {floor}", lambda seen: True, per_page=1):
            floor = int(txn["id"])
            break
        with self._lock:
            self._as_of = max(self._as_of, floor)
        return f"{AS_OF}{floor}"

    def moved(self, expected: Mapping[str, str]) -> set[str]:
        """Ids among ``expected`` (id -> version) with a newer transaction: one query.

        Tickets are grouped by the transaction id their version stands for (a search page
        shares one), so the query reads ``id > T AND ObjectId in (...)``: RT's database
        then walks only the transactions written since ``T`` (a few), instead of looking
        each ticket up in its index. A version of neither form counts as moved.
        """
        by_after: dict[int, list[str]] = {}
        moved = set()
        for tid, version in expected.items():
            after = _after(version)
            if after is None:
                moved.add(tid)
            else:
                by_after.setdefault(after, []).append(ticketsql.ticket_id(tid))
        clauses = [f"(id > {after} AND {ticketsql.any_of_numbers('ObjectId', ids)})"
                   for after, ids in sorted(by_after.items())]
        if clauses:
            wanted = {tid for ids in by_after.values() for tid in ids}
            for txn in self.transactions(" OR ".join(clauses), lambda seen: wanted <= seen):
                moved.add(str(txn.get("ObjectId")))
        return moved

    def etag(self, tid: str, version: str) -> str | None:
        """The ETag for a write conditional on ``version``; None when the ticket moved since.

        An ETag is returned as it is; ``#T`` becomes the ticket's newest transaction, provided
        it is not above ``T`` (one query).
        """
        if not version.startswith(AS_OF):
            return version if version.isdigit() else None
        after = _after(version)
        for txn in self.transactions(f"ObjectId = {ticketsql.ticket_id(tid)}",
                                     lambda seen: True, per_page=1):
            newest = int(txn["id"])
            return str(newest) if after is not None and newest <= after else None
        return None

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
                return str(storable(item.get("Content") or ""))
        return ""

    def filenames(self, tid: str) -> set[str]:
        """The names of the files attached to the ticket."""
        names: set[str] = set()
        page = 1
        while True:
            data = self.search(f"/ticket/{tid}/attachments", [
                ("page", page), ("per_page", MAX_PER_PAGE), ("fields", "Filename")])
            items = data.get("items") or []
            names |= {str(i["Filename"]) for i in items if i.get("Filename")}
            if len(items) < MAX_PER_PAGE:
                return names
            page += 1

    def message_since(self, tid: str, kind: str, since: datetime) -> bool | None:
        """Is there a ``kind`` (Comment) transaction by us on the ticket since ``since``?"""
        user = self.client.user
        who = f" AND Creator = {ticketsql.quote(user)}" if user else ""
        sql = (f"ObjectId = {ticketsql.ticket_id(tid)} AND Type = {ticketsql.quote(kind)} AND "
               f"Created >= {ticketsql.date_literal(since)}{who}")
        return any(True for _ in self.transactions(sql, lambda seen: True)) or None


def _after(version: str) -> int | None:
    """The transaction id a version stands for (``#T`` or an ETag); None if neither."""
    text = version.removeprefix(AS_OF)
    return int(text) if text.isdigit() else None


class Pace:
    """Page size and read timeout of one search: a page the desk does not answer in time
    is asked for again with half as many tickets (down to ``floor``) and twice the read
    timeout (up to ``SLOW_READ_FACTOR`` times the client's), after a back-off, within the
    caller's deadline (the client cuts timeouts to it). A GET changes nothing, and the
    keyset (``after``) is kept, so no ticket is skipped or yielded twice. Gives up when a
    page of ``floor`` tickets times out at the longest timeout.
    """

    def __init__(self, size: int, floor: int, client: RTClient) -> None:
        self.size, self.floor, self.client = size, floor, client
        self.read_timeout = client.timeout[1]
        self.longest = client.timeout[1] * SLOW_READ_FACTOR
        self.tries = 0

    def slower(self, slow: SlowAnswer) -> None:
        if self.size <= self.floor and self.read_timeout >= self.longest:
            raise TransientDeskError(f"{slow}: gave up at {self.size} tickets a page "
                                     f"and a {self.read_timeout:.0f} s read timeout") from slow
        self.size = max(self.floor, self.size // 2)
        self.read_timeout = min(self.longest, self.read_timeout * 2)
        pause = self.client.retry.delay(self.tries)
        self.tries += 1
        bound = call_deadline()
        if bound is not None and time.monotonic() + pause >= bound:
            raise TransientDeskError(f"{slow}: no time left to ask for less") from slow
        log.info("%s; asking again for %d tickets a page, waiting up to %.0f s, in %.1f s",
                 slow, self.size, self.read_timeout, pause)
        self.client.count_retry()
        time.sleep(pause)
