"""``RequestTrackerDesk``: the ``ServiceDesk`` port implemented on RT 5's REST2 API.

Reads. A search is keyset-paged and fetches everything a ticket needs in the page query
(custom fields, owner, requestor, queue), plus one cheap query for which of them are
duplicates and one for those duplicates' links; its versions cost one tiny query per page
(``reads.py``); ``TicketQuery.history`` adds one transaction query per page (more for a page
with more than 100 status and owner changes). ``get`` reads the ETag header.

Writes. RT applies what it can of a write and answers HTTP 200 with a message per part,
refusals included; every write reads those messages (``mapping.rejections``) and raises
``RejectedChange`` naming ticket and field. Creates are made once per idempotency key: the
key is looked up first, and after an unanswered POST it is looked up again (for as long as
the desk could still be working on it) before anything is re-sent. An unanswered comment or
bulk update is resolved the same way, by reading what the desk now holds, never by blindly
sending it again (that could overwrite an edit a person made in between).
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote as urlquote

from incident_ops.desk.port import (
    BadQuery,
    DeskError,
    LeaseState,
    RejectedChange,
    StaleTicket,
    TicketNotFound,
    TicketQuery,
    TransientDeskError,
)
from incident_ops.desk.rt import drafts, mapping, schema, ticketsql
from incident_ops.desk.rt.client import (
    AmbiguousWrite,
    RTClient,
    SlowAnswer,
    after_unanswered_attempt,
)
from incident_ops.desk.rt.lease_ticket import RTLeases
from incident_ops.desk.rt.reads import (
    AS_OF,
    CORE_FIELDS,
    MAX_PER_PAGE,
    MIN_PAGE_SIZE,
    SEARCH_FIELDS,
    SUBFIELDS,
    Pace,
    RTReads,
)
from incident_ops.model import ChangeResult, Ticket, TicketChange, TicketDraft

log = logging.getLogger(__name__)
T = TypeVar("T")


def _default_ranks() -> dict[str, int]:
    from incident_ops.config import load_vocabulary

    vocab = load_vocabulary()
    return {code: vocab.rank_for_priority(code) for code in vocab.codes("priorities")}


class RequestTrackerDesk:
    """The desk port on RT 5 REST2. Thread-safe as far as ``RTClient`` is.

    ``settle_seconds``: how long to wait for an unanswered write to show up on the desk
    before sending it again (default: the client's read timeout, plus 2 s).
    """

    def __init__(self, client: RTClient, page_size: int = 100, *, bulk_size: int = 100,
                 priority_ranks: Mapping[str, int] | None = None,
                 settle_seconds: float | None = None, create_attempts: int = 3,
                 min_page_size: int = MIN_PAGE_SIZE) -> None:
        self.client = client
        self.reads = RTReads(client)
        self.page_size = max(1, min(page_size, MAX_PER_PAGE))
        self.min_page_size = max(1, min(min_page_size, self.page_size))
        self.bulk_size = max(1, min(bulk_size, MAX_PER_PAGE))
        self.ranks = dict(priority_ranks) if priority_ranks is not None else _default_ranks()
        # How long an unanswered write may still land: the desk had a read timeout to work.
        self.settle_seconds = (settle_seconds if settle_seconds is not None
                               else client.timeout[1] + 2.0)
        self.create_attempts = max(1, create_attempts)
        self._emails: dict[str, str | None] = {}
        self.leases = RTLeases(self)
        self._nobody_id: str | None = None

    def close(self) -> None:
        self.client.close()

    # -- reading ---------------------------------------------------------------------------

    def search(self, query: TicketQuery) -> Iterator[Ticket]:
        """Keyset-paged on (LastUpdated, id) so tickets edited meanwhile are never skipped.

        Each ticket's version is the desk's newest transaction before its page was read
        (``reads.py``); ``custom_fields=False`` reads core columns and the duplicate link
        only (``Ticket.partial``).
        """
        if not query.custom_fields and (query.fields or query.sources):
            raise BadQuery("a search without custom fields cannot re-check custom-field "
                           "criteria (fields, sources)")
        fields = SEARCH_FIELDS if query.custom_fields else CORE_FIELDS
        sql = ticketsql.build(query, self.ranks)
        seen: set[str] = set()
        after: tuple[datetime, str] | None = None
        pace = Pace(self.page_size, self.min_page_size, self.client)
        while True:
            page_sql = sql if after is None else ticketsql.after_keyset(sql, *after)
            version = self.reads.as_of()  # before the page: see reads.py
            try:
                items, total = self.reads.tickets_page(
                    page_sql, pace.size, fields=fields, read_timeout=pace.read_timeout,
                    on_read_timeout="raise")
            except SlowAnswer as slow:
                pace.slower(slow)  # the same page again, smaller and waited for longer
                continue
            self.reads.add_links(items, masters=query.master_links,
                                 duplicates=query.with_duplicates)
            history = self.reads.history([str(i["id"]) for i in items]) \
                if query.history and items else {}
            for item in items:
                ticket = mapping.ticket_from_rt(item, ranks=self.ranks, version=version,
                                                partial=not query.custom_fields,
                                                with_duplicates=query.with_duplicates)
                if query.history:
                    ticket = mapping.times_from_history(ticket, history.get(ticket.id, []),
                                                        self._nobody())
                if ticket.id not in seen and ticketsql.matches(ticket, query):
                    seen.add(ticket.id)
                    yield ticket
            # RT counts what matched this page's query: no need to ask for an empty page.
            if len(items) < pace.size or (total is not None and total <= len(items)):
                return
            last = items[-1]
            stamp = mapping.parse_rt_datetime(last.get("LastUpdated"))
            after = (stamp or datetime.fromtimestamp(0, UTC), str(last.get("id")))

    def get(self, ticket_id: str) -> Ticket:
        tid = ticketsql.ticket_id(ticket_id)
        resp = self.client.get(f"/ticket/{tid}", params=dict(SUBFIELDS), ticket_id=tid)
        version = (resp.headers.get("ETag") or "").removeprefix("W/").strip('"') or None
        ticket = mapping.ticket_from_rt(resp.json(), ranks=self.ranks, version=version)
        ticket.extra["description_loaded"] = True
        return ticket.with_changes(description=self.reads.description(tid))

    def find_by_key(self, idempotency_key: str, queue: str | None = None) -> str | None:
        query = TicketQuery(queue=queue, fields={"idempotency_key": idempotency_key})
        sql = ticketsql.build(query, self.ranks)
        ids = sorted(int(str(item["id"])) for item in self.reads.tickets_page(
            sql, MAX_PER_PAGE, fields="CustomFields", order="id")[0]
            if idempotency_key in mapping.custom_field_values(item).get(
                schema.BY_FIELD["idempotency_key"].name, []))
        return str(ids[0]) if ids else None

    def _nobody(self) -> str:
        """RT's id of its user Nobody: an owner transaction to it is an un-assignment."""
        if self._nobody_id is None:
            data = self.client.json("GET", f"/user/{mapping.NOBODY}")
            self._nobody_id = str(data.get("id") or "")
        return self._nobody_id

    def user_email(self, user: str) -> str | None:
        if user in self._emails:
            return self._emails[user]
        try:
            data = self.client.json("GET", f"/user/{urlquote(user, safe='')}")
        except TicketNotFound:
            data = {}
        email = str(data.get("EmailAddress") or "") or None
        self._emails[user] = email
        return email

    def ping(self) -> tuple[bool, str]:
        try:
            info = self.client.json("GET", "/rt")
            return True, f"RT {info.get('Version', '?')} answers at {self.client.api}"
        except DeskError as exc:
            return False, f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # noqa: BLE001 - ping reports, it never raises
            return False, f"unexpected {type(exc).__name__}: {exc}"

    def history_mark(self) -> int:
        return int(self.reads.as_of().removeprefix(AS_OF))

    # -- leases (see desk/rt/lease_ticket.py) -----------------------------------------------

    def claim_lease(self, scope: str, holder: str, ttl_seconds: float) -> LeaseState:
        return self.leases.claim(scope, holder, ttl_seconds)

    def release_lease(self, scope: str, holder: str) -> None:
        self.leases.release(scope, holder)

    # -- writing ---------------------------------------------------------------------------

    def update(self, change: TicketChange) -> None:
        tid = ticketsql.ticket_id(change.ticket_id)
        body = self._change_body(change)
        if not body:
            return
        headers = None
        if change.expected_version:
            etag = self.reads.etag(tid, change.expected_version)
            if etag is None:
                raise StaleTicket(f"ticket {tid} changed since it was read", ticket_id=tid)
            headers = {"If-Match": f'"{etag}"'}
        try:
            resp = self.client.request("PUT", f"/ticket/{tid}", kind="write", json=body,
                                       headers=headers, ticket_id=tid)
        except StaleTicket as exc:
            # Our first PUT may have landed unanswered and moved the version itself.
            if after_unanswered_attempt(exc) and self._already_holds(tid, body):
                return
            raise
        self._raise_rejections(tid, resp.json(), body)

    def bulk_update(self, changes: Sequence[TicketChange]) -> list[ChangeResult]:
        results: dict[int, ChangeResult] = {}
        numbered = list(enumerate(changes))
        for start in range(0, len(numbered), self.bulk_size):
            results.update(self._bulk_chunk(numbered[start:start + self.bulk_size]))
        return [results[i] for i in range(len(changes))]

    def comment(self, ticket_id: str, text: str, *, change: TicketChange | None = None) -> None:
        tid = ticketsql.ticket_id(ticket_id)
        body: dict[str, Any] = {"Content": text, "ContentType": "text/plain"}
        rest: dict[str, Any] = {}
        if change is not None:
            if change.expected_version and self.reads.moved({tid: change.expected_version}):
                raise StaleTicket(f"ticket {tid} changed since it was read", ticket_id=tid)
            full = self._change_body(change)
            # The comment call takes Status and custom fields; owner and core columns go
            # in a PUT right after (REST2 ignores Owner on a comment).
            body.update({k: v for k, v in full.items() if k in ("Status", "CustomFields")})
            rest = {k: v for k, v in full.items() if k not in ("Status", "CustomFields")}
        self._post_message(tid, body, kind="Comment")
        if rest:
            resp = self.client.request("PUT", f"/ticket/{tid}", kind="write", json=rest,
                                       ticket_id=tid)
            self._raise_rejections(tid, resp.json(), rest)

    def attach(self, ticket_id: str, filename: str, content: bytes, mime_type: str,
               *, note: str = "") -> None:
        tid = ticketsql.ticket_id(ticket_id)
        if filename in self.reads.filenames(tid):
            return  # attached by an earlier attempt: once per file name
        body: dict[str, Any] = {"Attachments": [{
            "FileName": filename, "FileType": mime_type,
            "FileContent": base64.b64encode(content).decode("ascii")}]}
        if note:
            body.update(Content=note, ContentType="text/plain")
        self._post_message(tid, body, kind="Comment")

    def link_duplicate(self, duplicate_id: str, master_id: str) -> None:
        dup, master = ticketsql.ticket_id(duplicate_id), ticketsql.ticket_id(master_id)
        if dup == master:
            raise RejectedChange(f"ticket {dup} cannot duplicate itself", ticket_id=dup,
                                 field="duplicate_of")
        # Setting MemberOf (not AddMemberOf) makes a repeat a no-op: RT answers [].
        for message in self._link_write(dup, {"MemberOf": int(master)}):
            if "resolve" in message.lower():
                raise TicketNotFound(f"ticket {master} not found: {message}", ticket_id=master)
            raise RejectedChange(f"ticket {dup}: duplicate_of refused: {message}",
                                 ticket_id=dup, field="duplicate_of")

    def unlink_duplicate(self, duplicate_id: str, master_id: str) -> None:
        dup, master = ticketsql.ticket_id(duplicate_id), ticketsql.ticket_id(master_id)
        for message in self._link_write(dup, {"DeleteMemberOf": int(master)}):
            if message.strip().rstrip(".").lower() == "link not found":
                continue  # already gone: a repeat is a no-op
            raise RejectedChange(f"ticket {dup}: removing duplicate_of refused: {message}",
                                 ticket_id=dup, field="duplicate_of")

    def add_reference(self, ticket_id: str, target_id: str) -> None:
        tid, target = ticketsql.ticket_id(ticket_id), ticketsql.ticket_id(target_id)
        for message in self._link_write(tid, {"AddRefersTo": int(target)}):
            if "already exists" in message.lower():
                continue  # a repeat is a no-op
            raise RejectedChange(f"ticket {tid}: reference to #{target} refused: {message}",
                                 ticket_id=tid, field="refers_to")

    def _link_write(self, tid: str, body: dict[str, Any]) -> list[str]:
        """PUT one link change; RT's refusals, which the caller sorts into no-ops and errors."""
        resp = self.client.request("PUT", f"/ticket/{tid}", kind="write", json=body,
                                   ticket_id=tid)
        return [message for _, message in mapping.rejections(resp.json(), body)]

    def create(self, draft: TicketDraft) -> str:
        body = drafts.create_body(self.client, draft, self.ranks)
        found = self.find_by_key(draft.idempotency_key, draft.queue)
        if found:
            return found
        for attempt in range(self.create_attempts):
            try:
                data = self.client.json("POST", "/ticket", kind="write", json=body)
                return str(data["id"])
            except AmbiguousWrite as exc:
                log.warning("create %s unanswered (%s); looking the key up",
                            draft.idempotency_key, exc)
                found = self._settle(lambda: self.find_by_key(draft.idempotency_key,
                                                              draft.queue),
                                     wait=exc.still_running)
                if found:
                    return found
                log.warning("create %s did not land; sending again (%d)",
                            draft.idempotency_key, attempt + 1)
                self.client.pause(attempt)
        raise TransientDeskError(f"create {draft.idempotency_key!r}: no answer after "
                                 f"{self.create_attempts} attempts")

    # -- internals: writes -----------------------------------------------------------------

    def _change_body(self, change: TicketChange) -> dict[str, Any]:
        try:
            body = mapping.write_payload(change.fields, self.ranks)
        except mapping.UnknownField as exc:
            raise RejectedChange(f"ticket {change.ticket_id}: no RT field for {exc.args[0]!r}",
                                 ticket_id=change.ticket_id, field=str(exc.args[0])) from None
        if change.status is not None:
            body["Status"] = change.status  # lifecycle names are written verbatim
        if change.owner is not None:
            body["Owner"] = change.owner
        return body

    def _raise_rejections(self, tid: str, messages: Any, body: Mapping[str, Any]) -> None:
        refused = mapping.rejections(messages if isinstance(messages, list) else [], body)
        if refused:
            fields = ",".join(dict.fromkeys(f for f, _ in refused))
            text = "; ".join(m for _, m in refused)
            raise RejectedChange(f"ticket {tid}: {fields} refused: {text} (other parts of "
                                 "the change were applied)", ticket_id=tid, field=fields)

    def _already_holds(self, tid: str, body: Mapping[str, Any]) -> bool:
        return mapping.item_holds(self.reads.current([tid]).get(tid), body)

    def _bulk_chunk(self, chunk: list[tuple[int, TicketChange]],
                    attempts: int = 3) -> dict[int, ChangeResult]:
        results: dict[int, ChangeResult] = {}
        expected = {c.ticket_id: c.expected_version for _, c in chunk if c.expected_version}
        moved = self.reads.moved(expected) if expected else set()
        sent: list[tuple[int, TicketChange, dict[str, Any]]] = []
        for i, change in chunk:
            if change.ticket_id in moved and change.expected_version:
                results[i] = ChangeResult(change.ticket_id, "stale",
                                          "changed on the desk since it was read")
                continue
            try:
                ticketsql.ticket_id(change.ticket_id)
                body = self._change_body(change)
            except DeskError as exc:
                results[i] = ChangeResult(change.ticket_id, "failed", str(exc))
                continue
            if not body:
                results[i] = ChangeResult(change.ticket_id, "skipped", "nothing to write")
                continue
            sent.append((i, change, body))
        if not sent:
            return results
        payload = [{"id": int(change.ticket_id), **body} for _, change, body in sent]
        try:
            answer = self.client.json("PUT", "/tickets/bulk", kind="write", json=payload,
                                      repeat_unanswered=False)
        except AmbiguousWrite as exc:
            log.warning("bulk update of %d tickets unanswered (%s); reading them back",
                        len(sent), exc)
            results.update(self._bulk_unanswered(sent, attempts - 1, wait=exc.still_running))
            return results
        # RT answers in request order: [[id, message, ...], ...].
        rows = answer if isinstance(answer, list) else []
        for n, (i, change, body) in enumerate(sent):
            row = rows[n] if n < len(rows) and isinstance(rows[n], list) else [change.ticket_id]
            messages = [str(m) for m in row[1:]]
            if any("does not exist" in m for m in messages):
                results[i] = ChangeResult(change.ticket_id, "failed", "ticket not found")
                continue
            refused = mapping.rejections(messages, body)
            if refused:
                text = "; ".join(f"{f}: {m}" for f, m in refused)
                results[i] = ChangeResult(change.ticket_id, "failed", text)
            else:
                results[i] = ChangeResult(change.ticket_id, "done", "; ".join(messages))
        return results

    def _bulk_unanswered(self, sent: list[tuple[int, TicketChange, dict[str, Any]]],
                         attempts: int, *, wait: bool) -> dict[int, ChangeResult]:
        """After a bulk PUT without an answer: what landed is done, what a person changed
        since is stale, the rest is sent again (with a fresh version check)."""
        ids = [change.ticket_id for _, change, _ in sent]

        def all_landed() -> bool | None:
            now = self.reads.current(ids)
            return all(mapping.item_holds(now.get(c.ticket_id), b) for _, c, b in sent) or None

        self._settle(all_landed, wait=wait)
        now = self.reads.current(ids)
        results: dict[int, ChangeResult] = {}
        again: list[tuple[int, TicketChange]] = []
        for i, change, body in sent:
            if mapping.item_holds(now.get(change.ticket_id), body):
                results[i] = ChangeResult(change.ticket_id, "done", "written (answer was lost)")
            elif attempts > 0:
                again.append((i, change))  # the re-check below tells a person's edit apart
            else:
                results[i] = ChangeResult(change.ticket_id, "failed", "the desk did not answer")
        if again:
            self.client.pause(max(0, 2 - attempts))
            results.update(self._bulk_chunk(again, attempts))
        return results

    def _post_message(self, tid: str, body: dict[str, Any], *, kind: str) -> None:
        path = f"/ticket/{tid}/{kind.lower()}"
        since = datetime.now(UTC) - timedelta(seconds=2)
        try:
            resp = self.client.request("POST", path, kind="write", json=body, ticket_id=tid)
        except AmbiguousWrite as exc:
            # Never post twice: wait until the desk shows the message or clearly does not.
            if self._settle(lambda: self.reads.message_since(tid, kind, since),
                            wait=exc.still_running):
                return
            self.client.pause(0)
            resp = self.client.request("POST", path, kind="write", json=body, ticket_id=tid)
        self._raise_rejections(tid, resp.json(), body)

    def _settle(self, probe: Callable[[], T | None], *, wait: bool = True) -> T | None:
        """Poll ``probe`` until it finds something or the desk had time to finish.

        ``wait=False`` (the desk answered, if with an error): look once.
        """
        deadline = time.monotonic() + (self.settle_seconds if wait else 0.0)
        pause = 0.2
        while True:
            found = probe()
            if found or time.monotonic() >= deadline:
                return found
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, 2.0)

