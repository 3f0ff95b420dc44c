"""The RT queries behind the adapter: ticket pages, "moved since", current state.

Versions. RT's ETag for a ticket is the id of its newest transaction (REST2
``Record/WithETag.pm``), not its LastUpdated, so it cannot be read off a search result, and
asking RT for it costs a ``/transactions`` query per page of tickets -- as much as reading
the page itself when the page has no custom fields. So a search gives each ticket a *read
stamp* instead, ``"@" + LastUpdated`` (UTC, whole seconds), whenever that is exact: RT
stamps LastUpdated after every transaction it writes (``RT::Record::_NewTransaction``), so
once the second of the LastUpdated we read is over before our read began, "a transaction
created after the stamp" is exactly "changed since it was read". ``moved`` checks that for
up to a hundred tickets in one query, and a single conditional write turns the stamp into
the ETag (the newest transaction, if not newer than the stamp) for ``If-Match``. Tickets
updated within a second or two of the read ("hot") get the ETag at read time instead
(``versions``, one query for the page's hot tickets), which has no such blind spot. When
the desk's clock is unknown (no ``Date`` header) every ticket counts as hot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from incident_ops.desk.rt import mapping, ticketsql
from incident_ops.desk.rt.client import RTClient

CORE_FIELDS = "Subject,Status,Priority,Created,LastUpdated,Resolved,Queue,Owner,Requestor"
SEARCH_FIELDS = CORE_FIELDS + ",CustomFields"
STATE_FIELDS = "Status,Owner,Priority,Subject,CustomFields"  # what a write can set
SUBFIELDS = {"fields[Queue]": "Name", "fields[Owner]": "Name,EmailAddress",
             "fields[Requestor]": "EmailAddress"}
MAX_PER_PAGE = 100  # REST2 caps per_page at 100
LONG_QUERY = 1500  # longer TicketSQL goes in a POST body rather than the URL
STAMP = "@"  # a read stamp version: "@YYYY-MM-DD HH:MM:SS" (LastUpdated, UTC)
# LastUpdated is stamped right after each transaction; look this far back for the newest
# one (scrips can delay the stamp past the second the transaction was written in).
VERSION_WINDOW = timedelta(seconds=5)
# A ticket updated this close to the start of the read gets its ETag read at once: its
# LastUpdated second may not be over, so a later edit could share it.
HOT = timedelta(seconds=2)


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    total: int | None  # RT's count of all that match the query
    read_at: datetime | None  # the earliest the desk can have begun the read (its clock)


class RTReads:
    def __init__(self, client: RTClient) -> None:
        self.client = client

    def search(self, path: str, params: list[tuple[str, Any]]) -> dict[str, Any]:
        data = self._search(path, params).json()
        return data if isinstance(data, dict) else {}

    def _search(self, path: str, params: list[tuple[str, Any]]) -> Any:
        if len(str(dict(params).get("query", ""))) > LONG_QUERY:
            return self.client.request("POST", path, kind="search", data=params)
        return self.client.request("GET", path, kind="search", params=params)

    def tickets_page(self, sql: str, per_page: int, *, fields: str = SEARCH_FIELDS,
                     order: str = "LastUpdated") -> tuple[list[dict[str, Any]], int | None]:
        """One page of tickets in (order, id) order and RT's count of all matching ``sql``."""
        page = self.page(sql, per_page, fields=fields, order=order)
        return page.items, page.total

    def page(self, sql: str, per_page: int, *, fields: str = SEARCH_FIELDS,
             order: str = "LastUpdated") -> Page:
        orders = list(dict.fromkeys((order, "id")))
        params: list[tuple[str, Any]] = [("query", sql), ("page", 1), ("per_page", per_page),
                                         ("fields", fields)]
        params += [("orderby", o) for o in orders] + [("order", "ASC")] * len(orders)
        if "Owner" in fields:
            params += list(SUBFIELDS.items())
        resp = self._search("/tickets", params)
        data = resp.json()
        data = data if isinstance(data, dict) else {}
        total = data.get("total")
        items = [item for item in data.get("items") or [] if isinstance(item, dict)]
        return Page(items, int(total) if total is not None and str(total).isdigit() else None,
                    _read_at(resp))

    def page_versions(self, page: Page) -> dict[str, str]:
        """Each ticket's version: its read stamp, or its ETag when it is hot (module doc)."""
        out: dict[str, str] = {}
        hot: list[dict[str, Any]] = []
        for item in page.items:
            stamp = mapping.parse_rt_datetime(item.get("LastUpdated"))
            if stamp is None or page.read_at is None or stamp >= page.read_at - HOT:
                hot.append(item)
            else:
                out[str(item["id"])] = STAMP + ticketsql.utc_text(stamp)
        out.update(self.versions(hot) if hot else {})
        return out

    def current(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """What a write can set, now, for up to 100 tickets: one query."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        items, _ = self.tickets_page(ticketsql.any_of_ids(wanted), MAX_PER_PAGE,
                                     fields=STATE_FIELDS, order="id")
        return {str(item["id"]): item for item in items}

    def transactions(self, sql: str, stop: Callable[[set[str]], bool], *,
                     fields: str = "ObjectId") -> Iterator[dict[str, Any]]:
        """Ticket transactions matching ``sql``, newest first, until ``stop(ticket ids seen)``."""
        seen: set[str] = set()
        page = 1
        while True:
            data = self.search("/transactions", [
                ("query", f"ObjectType = 'RT::Ticket' AND ({sql})"), ("page", page),
                ("per_page", MAX_PER_PAGE), ("fields", fields), ("orderby", "id"),
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
        """Ids among ``expected`` (id -> version: ETag or read stamp) changed since: one query.

        A version that is neither (unknown form) counts as moved: never write blind.
        """
        clauses, moved = [], set()
        for tid, version in expected.items():
            text = str(version)
            stamp = stamp_time(text)
            if text.isdigit():
                clauses.append(f"(ObjectId = {ticketsql.ticket_id(tid)} AND id > {int(text)})")
            elif stamp is not None:
                clauses.append(f"(ObjectId = {ticketsql.ticket_id(tid)} AND Created > "
                               f"{ticketsql.date_literal(stamp)})")
            else:
                moved.add(tid)
        if clauses:
            for txn in self.transactions(" OR ".join(clauses), lambda seen: False):
                moved.add(str(txn.get("ObjectId")))
        return moved

    def etag(self, tid: str, version: str) -> str | None:
        """The ETag for a write conditional on ``version``; None when the ticket moved since.

        An ETag is returned as it is; a read stamp becomes the newest transaction, provided
        that is not newer than the stamp (one query).
        """
        stamp = stamp_time(version)
        if stamp is None:
            return version if version.isdigit() else None
        for txn in self.transactions(f"ObjectId = {ticketsql.ticket_id(tid)}",
                                     lambda seen: True, fields="ObjectId,Created"):
            created = mapping.parse_rt_datetime(txn.get("Created"))
            return str(txn.get("id")) if created is not None and created <= stamp else None
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
                return str(item.get("Content") or "")
        return ""

    def message_since(self, tid: str, kind: str, since: datetime) -> bool | None:
        """Is there a ``kind`` (Comment) transaction by us on the ticket since ``since``?"""
        user = self.client.user
        who = f" AND Creator = {ticketsql.quote(user)}" if user else ""
        sql = (f"ObjectId = {ticketsql.ticket_id(tid)} AND Type = {ticketsql.quote(kind)} AND "
               f"Created >= {ticketsql.date_literal(since)}{who}")
        return any(True for _ in self.transactions(sql, lambda seen: True)) or None


def stamp_time(version: str) -> datetime | None:
    """The moment of a read stamp version, None for anything else (an ETag)."""
    if not version.startswith(STAMP):
        return None
    try:
        return datetime.fromisoformat(version[len(STAMP):]).replace(tzinfo=UTC)
    except ValueError:
        return None


def _read_at(resp: Any) -> datetime | None:
    """The desk's clock when it began answering, at the earliest: its ``Date`` header (whole
    seconds, rounded down) less the time the exchange took. None without a usable header."""
    try:
        date = parsedate_to_datetime(resp.headers.get("Date") or "")
    except (TypeError, ValueError, IndexError):
        return None
    if date.tzinfo is None:
        return None
    elapsed = getattr(resp, "elapsed", None) or timedelta(0)
    return date.astimezone(UTC) - elapsed
