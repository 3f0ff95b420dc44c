"""``MemoryDesk``: the ``ServiceDesk`` port in memory, for unit tests of everything above it.

It keeps canonical ``Ticket`` objects and a global transaction counter, and behaves the way
the port promises (and the RT adapter does, checked by the same contract tests in
``tests/contract``): versions change with every write and a write conditional on an old one
is ``StaleTicket``; a closed ticket can't leave closed; creates are once per idempotency key;
links, references and attachments are idempotent; searches are in (updated, id) order; the
lease log is ordered by transaction id and timed by the desk's clock.

It also lets a test play the people and the faults around a run: ``edit`` (a person's change,
a new transaction), ``fail`` (the next calls of an operation raise), ``calls`` (what was asked).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

from incident_ops.desk import lease_log
from incident_ops.desk.port import (
    BadQuery,
    DeskError,
    LeaseState,
    RejectedChange,
    StaleTicket,
    TicketNotFound,
    TicketQuery,
)
from incident_ops.model import (
    CLOSED,
    OPEN_STATUSES,
    ChangeResult,
    Ticket,
    TicketChange,
    TicketDraft,
)

# Ticket attributes a desk keeps in its core record; every other canonical field is a
# "custom field": not read by a light search (``TicketQuery(custom_fields=False)``).
CORE = {"id", "subject", "status", "priority", "created", "updated", "queue", "description",
        "requester", "handler", "handler_email", "resolved_at", "closed_at", "duplicate_of",
        "duplicates", "version", "partial", "extra"}
CUSTOM = {f.name for f in fields(Ticket)} - CORE
INACTIVE = ("resolved", "closed")
# What a light read shows of the custom fields: nothing (their defaults).
_BLANK: dict[str, Any] = {f.name: f.default for f in fields(Ticket) if f.name in CUSTOM}
MAX_MEMBER_OF = 50


@dataclass
class Comment:
    ticket_id: str
    text: str
    order: int


@dataclass
class _Record:
    ticket: Ticket
    links_to: set[str] = field(default_factory=set)  # RefersTo
    files: dict[str, bytes] = field(default_factory=dict)


class MemoryDesk:
    def __init__(self, *, clock: Callable[[], datetime] | None = None,
                 users: dict[str, str] | None = None) -> None:
        self.clock = clock or (lambda: datetime.now(UTC).replace(microsecond=0))
        self.users = dict(users or {})  # desk user -> e-mail
        self.records: dict[str, _Record] = {}
        self.comments: list[Comment] = []
        self.calls: Counter[str] = Counter()
        self._txn = 0
        self._next_id = 1
        self._faults: dict[str, list[Exception]] = {}
        self._leases: dict[str, list[lease_log.LeaseEntry]] = {}
        self._lock = threading.RLock()

    # -- for tests ---------------------------------------------------------------------

    def add(self, ticket: Ticket) -> Ticket:
        """Put a ticket on the desk as it is (a person or another system created it)."""
        with self._lock:
            tid = ticket.id or self._new_id()
            self._next_id = max(self._next_id, int(tid) + 1) if tid.isdigit() else self._next_id
            stored = replace(ticket, id=tid, version=None, partial=False)
            self.records[tid] = _Record(stored)
            self._touch(tid)
            return self._read(tid)

    def edit(self, ticket_id: str, **changes: Any) -> None:
        """A person's change: a new transaction on the ticket, whatever it changes."""
        with self._lock:
            rec = self._record(ticket_id)
            rec.ticket = replace(rec.ticket, **changes)
            self._touch(ticket_id)

    def fail(self, operation: str, error: Exception, times: int = 1) -> None:
        """The next ``times`` calls of ``operation`` (a method name) raise ``error``."""
        self._faults.setdefault(operation, []).extend([error] * times)

    def ticket(self, ticket_id: str) -> Ticket:
        return self._read(ticket_id)

    def comments_on(self, ticket_id: str) -> list[str]:
        return [c.text for c in self.comments if c.ticket_id == ticket_id]

    # -- reading ---------------------------------------------------------------------------

    def search(self, query: TicketQuery) -> Iterator[Ticket]:
        self._enter("search")
        if not query.custom_fields and (query.fields or query.sources):
            raise BadQuery("a search without custom fields cannot re-check custom-field "
                           "criteria (fields, sources)")
        if len(query.member_of) > MAX_MEMBER_OF:
            raise BadQuery(f"at most {MAX_MEMBER_OF} masters per member_of search")
        with self._lock:
            found = [self._view(t.id, query) for t in
                     sorted((r.ticket for r in self.records.values()),
                            key=lambda t: (t.updated, int(t.id) if t.id.isdigit() else 0))
                     if self._matches(t, query)]
        yield from found

    def get(self, ticket_id: str) -> Ticket:
        self._enter("get")
        return self._read(ticket_id)

    def find_by_key(self, idempotency_key: str, queue: str | None = None) -> str | None:
        self._enter("find_by_key")
        with self._lock:
            ids = sorted(int(t.id) for r in self.records.values() for t in [r.ticket]
                          if t.idempotency_key == idempotency_key
                          and (queue is None or t.queue == queue))
        return str(ids[0]) if ids else None

    def user_email(self, user: str) -> str | None:
        return self.users.get(user)

    def ping(self) -> tuple[bool, str]:
        return True, f"memory desk with {len(self.records)} tickets"

    def history_mark(self) -> int:
        return self._txn

    # -- writing ---------------------------------------------------------------------------

    def update(self, change: TicketChange) -> None:
        self._enter("update")
        with self._lock:
            self._check(change)
            self._apply(change)

    def bulk_update(self, changes: Sequence[TicketChange]) -> list[ChangeResult]:
        self._enter("bulk_update")
        results = []
        with self._lock:
            for change in changes:
                try:
                    self._check(change)
                    self._apply(change)
                    results.append(ChangeResult(change.ticket_id, "done"))
                except StaleTicket as exc:
                    results.append(ChangeResult(change.ticket_id, "stale", str(exc)))
                except DeskError as exc:
                    results.append(ChangeResult(change.ticket_id, "failed", str(exc)))
        return results

    def comment(self, ticket_id: str, text: str, *, change: TicketChange | None = None) -> None:
        self._enter("comment")
        with self._lock:
            self._record(ticket_id)
            if change is not None:
                self._check(change)
            self.comments.append(Comment(ticket_id, text, self._txn + 1))
            if change is not None:
                self._apply(change)
            else:
                self._touch(ticket_id)

    def create(self, draft: TicketDraft) -> str:
        self._enter("create")
        with self._lock:
            found = self.find_by_key(draft.idempotency_key, draft.queue)
            if found:
                return found
            unknown = [k for k in draft.fields if k not in CUSTOM]
            if unknown:
                raise RejectedChange(f"new ticket: no field {unknown[0]!r}", field=unknown[0])
            now = self.clock()
            tid = self._new_id()
            ticket = Ticket(id=tid, subject=draft.subject, status=draft.status or "new",
                            priority=draft.priority or "medium", created=now, updated=now,
                            queue=draft.queue, description=draft.description,
                            requester=draft.requester, handler=draft.owner,
                            idempotency_key=draft.idempotency_key)
            ticket = replace(ticket, **{k: _value(k, v) for k, v in draft.fields.items()})
            self.records[tid] = _Record(ticket, links_to=set(draft.refers_to))
            self._touch(tid)
            for target in draft.refers_to:
                self._touch(self._record(target).ticket.id)  # RT records the link on both
            return tid

    def link_duplicate(self, duplicate_id: str, master_id: str) -> None:
        self._enter("link_duplicate")
        with self._lock:
            if duplicate_id == master_id:
                raise RejectedChange(f"ticket {duplicate_id} cannot duplicate itself",
                                     ticket_id=duplicate_id, field="duplicate_of")
            dup, master = self._record(duplicate_id), self._record(master_id)
            if dup.ticket.duplicate_of == master_id:
                return
            walk: str | None = master_id
            while walk is not None:  # RT refuses MemberOf loops
                if walk == duplicate_id:
                    raise RejectedChange(f"ticket {duplicate_id}: duplicate_of refused: "
                                         "circular relationship", ticket_id=duplicate_id,
                                         field="duplicate_of")
                walk = self.records[walk].ticket.duplicate_of if walk in self.records else None
            dup.ticket = replace(dup.ticket, duplicate_of=master_id)
            self._touch(duplicate_id)
            self._touch(master.ticket.id)

    def unlink_duplicate(self, duplicate_id: str, master_id: str) -> None:
        self._enter("unlink_duplicate")
        with self._lock:
            dup = self._record(duplicate_id)
            if dup.ticket.duplicate_of == master_id:
                dup.ticket = replace(dup.ticket, duplicate_of=None)
                self._touch(duplicate_id)

    def add_reference(self, ticket_id: str, target_id: str) -> None:
        self._enter("add_reference")
        with self._lock:
            rec = self._record(ticket_id)
            self._record(target_id)
            if target_id not in rec.links_to:
                rec.links_to.add(target_id)
                self._touch(ticket_id)
                self._touch(target_id)

    def references(self, ticket_id: str) -> set[str]:
        return set(self._record(ticket_id).links_to)

    def attach(self, ticket_id: str, filename: str, content: bytes, mime_type: str,
               *, note: str = "") -> None:
        self._enter("attach")
        with self._lock:
            rec = self._record(ticket_id)
            if filename in rec.files:
                return
            rec.files[filename] = content
            if note:
                self.comments.append(Comment(ticket_id, note, self._txn + 1))
            self._touch(ticket_id)

    def files(self, ticket_id: str) -> dict[str, bytes]:
        return dict(self._record(ticket_id).files)

    # -- leases ------------------------------------------------------------------------------

    def claim_lease(self, scope: str, holder: str, ttl_seconds: float) -> LeaseState:
        self._enter("claim_lease")
        return self._lease_write(scope, lease_log.CLAIM, holder, ttl_seconds)

    def release_lease(self, scope: str, holder: str) -> None:
        self._enter("release_lease")
        self._lease_write(scope, lease_log.RELEASE, holder, 0)

    def _lease_write(self, scope: str, op: str, holder: str, ttl: float) -> LeaseState:
        with self._lock:
            self._txn += 1
            now = self.clock()
            log = self._leases.setdefault(scope, [])
            log.append(lease_log.LeaseEntry(self._txn, now, op, lease_log.clean(holder), ttl))
            return lease_log.holder_of(scope, log[-lease_log.WINDOW:], now)

    # -- internals ---------------------------------------------------------------------------

    def _enter(self, operation: str) -> None:
        self.calls[operation] += 1
        queued = self._faults.get(operation)
        if queued:
            raise queued.pop(0)

    def _new_id(self) -> str:
        tid = str(self._next_id)
        self._next_id += 1
        return tid

    def _record(self, ticket_id: str) -> _Record:
        rec = self.records.get(str(ticket_id))
        if rec is None:
            raise TicketNotFound(f"ticket {ticket_id} not found", ticket_id=str(ticket_id))
        return rec

    def _touch(self, ticket_id: str) -> None:
        self._txn += 1
        rec = self.records[ticket_id]
        rec.ticket = replace(rec.ticket, updated=self.clock(), version=str(self._txn))

    def _read(self, ticket_id: str) -> Ticket:
        with self._lock:
            ticket = self._record(ticket_id).ticket
            return replace(ticket, duplicates=self._duplicates(ticket.id), extra={})

    def _duplicates(self, ticket_id: str) -> tuple[str, ...]:
        return tuple(sorted((r.ticket.id for r in self.records.values()
                             if r.ticket.duplicate_of == ticket_id), key=int))

    def _view(self, ticket_id: str, query: TicketQuery) -> Ticket:
        ticket = self._read(ticket_id)
        if not query.with_duplicates:
            ticket = replace(ticket, duplicates=None)
        if not query.master_links:
            ticket = replace(ticket, duplicate_of=None)
        if not query.custom_fields:
            ticket = replace(ticket, partial=True, **_BLANK)
        return ticket

    def _check(self, change: TicketChange) -> None:
        rec = self._record(change.ticket_id)
        if change.expected_version is not None and change.expected_version != rec.ticket.version:
            raise StaleTicket(f"ticket {change.ticket_id} changed since it was read",
                              ticket_id=change.ticket_id)
        if rec.ticket.status == CLOSED and change.status not in (None, CLOSED):
            raise RejectedChange(f"ticket {change.ticket_id}: status refused: closed is final",
                                 ticket_id=change.ticket_id, field="status")
        unknown = [k for k in change.fields if k not in CUSTOM and k != "priority"]
        if unknown:
            raise RejectedChange(f"ticket {change.ticket_id}: no field {unknown[0]!r}",
                                 ticket_id=change.ticket_id, field=unknown[0])

    def _apply(self, change: TicketChange) -> None:
        rec = self._record(change.ticket_id)
        t = replace(rec.ticket, **{k: _value(k, v) for k, v in change.fields.items()})
        if change.owner is not None:
            t = replace(t, handler=change.owner)
        if change.status is not None and change.status != t.status:
            now = self.clock()
            if change.status in INACTIVE:  # RT stamps Resolved on every move into inactive
                t = replace(t, resolved_at=now)
            if change.status == CLOSED:
                t = replace(t, closed_at=now)
            t = replace(t, status=change.status)
        rec.ticket = t
        self._touch(change.ticket_id)

    def _matches(self, t: Ticket, q: TicketQuery) -> bool:
        checks = [
            q.queue is None or t.queue == q.queue,
            not q.statuses or t.status in q.statuses,
            not q.sources or t.source in q.sources,
            not q.priorities or t.priority in q.priorities,
            q.updated_since is None or t.updated >= q.updated_since,
            q.created_since is None or t.created >= q.created_since,
            q.created_before is None or t.created < q.created_before,
            not q.open_only or t.status in OPEN_STATUSES,
            all(_text(getattr(t, k)) == v for k, v in q.fields.items()),
            all(getattr(t, k) not in (None, (), "") for k in q.field_is_set),
            all(getattr(t, k) in (None, (), "") for k in q.field_unset),
            all(getattr(t, k) is not None and getattr(t, k) < v
                for k, v in q.field_before.items()),
            not q.ids or t.id in set(q.ids),
            not q.member_of or t.duplicate_of in set(q.member_of),
            q.has_duplicates is None or bool(self._duplicates(t.id)) == q.has_duplicates,
        ]
        return all(checks)


def _value(name: str, value: Any) -> Any:
    if name in ("escalation", "automation_keys") and value is not None:
        return tuple(value) if not isinstance(value, str) else (value,)
    if name in ("escalation", "automation_keys"):
        return ()
    return value


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return None if value is None else str(value)
