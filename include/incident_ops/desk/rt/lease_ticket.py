"""Leases on RT: one ticket per scope in the Automation queue; its Subject changes are the log.

Why the Subject: RT records every change of a core field as a ``Set`` transaction that
carries the new value inline (``NewValue``), so the log reads back in one small
``/transactions`` query, ordered by transaction id and timed by the desk's clock, which is
all ``lease_log`` needs. A person looking at the desk sees the current entry as the
ticket's subject ("lease|claim|<run>|120|3") and the whole log in its history.

The lease ticket of a scope is created on first use under the idempotency key
``lease:<scope>``. Two first users at once may each create one; both then use the ticket
with the lowest id (every ticket created before ours is visible by then, any later one has
a higher id), so they still share one log.
"""

from __future__ import annotations

import itertools
import logging
import threading
from typing import Protocol

from incident_ops.desk import lease_log
from incident_ops.desk.port import DeskError, LeaseState, TicketNotFound
from incident_ops.desk.rt import mapping, schema, ticketsql
from incident_ops.desk.rt.client import RTClient
from incident_ops.desk.rt.reads import RTReads
from incident_ops.model import TicketDraft

log = logging.getLogger(__name__)


# (desk API, scope) -> lease ticket id, for every adapter of this process: a lease ticket is
# never deleted, and each Airflow task builds its own adapter.
_TICKETS: dict[tuple[str, str], str] = {}
_TICKETS_LOCK = threading.Lock()


def lease_key(scope: str) -> str:
    return f"lease:{scope}"


class LeaseDesk(Protocol):
    """What the leases use of the adapter (``RequestTrackerDesk``, which holds them)."""

    client: RTClient
    reads: RTReads

    def find_by_key(self, idempotency_key: str, queue: str | None = None) -> str | None: ...

    def create(self, draft: TicketDraft) -> str: ...


class RTLeases:
    def __init__(self, desk: LeaseDesk) -> None:
        self.desk = desk
        self._seq = itertools.count(1)

    def ticket(self, scope: str) -> str:
        cached = (self.desk.client.api, scope)
        with _TICKETS_LOCK:
            known = _TICKETS.get(cached)
        if known:
            return known
        key = lease_key(scope)
        found = self.desk.find_by_key(key, schema.AUTOMATION)
        if found is None:
            self.desk.create(TicketDraft(
                queue=schema.AUTOMATION,
                subject=lease_log.entry_text(lease_log.RELEASE, "-", 0, 0),
                description=(f"租约 / Lease of '{scope}': the automation runs that may act for "
                             "this scope take turns here (docs/exactly-once.md). Do not edit."),
                idempotency_key=key))
            found = self.desk.find_by_key(key, schema.AUTOMATION)  # the lowest id wins
        if found is None:
            raise DeskError(f"lease ticket for {scope!r} was created but cannot be found "
                            f"by its key {key!r}")
        with _TICKETS_LOCK:
            _TICKETS[cached] = found
        return found

    def write(self, scope: str, op: str, holder: str, ttl: float) -> str:
        tid = self.ticket(scope)
        text = lease_log.entry_text(op, holder, ttl, next(self._seq))
        try:
            resp = self.desk.client.request("PUT", f"/ticket/{tid}", kind="write",
                                            json={"Subject": text}, ticket_id=tid)
        except TicketNotFound:  # a desk rebuilt under the same address: find it anew
            with _TICKETS_LOCK:
                _TICKETS.pop((self.desk.client.api, scope), None)
            tid = self.ticket(scope)
            resp = self.desk.client.request("PUT", f"/ticket/{tid}", kind="write",
                                            json={"Subject": text}, ticket_id=tid)
        refused = mapping.rejections(resp.json(), {"Subject": text})
        if refused:
            raise DeskError(f"lease {scope!r}: the desk refused the entry: {refused}",
                            ticket_id=tid, field="Subject")
        return text

    def read(self, scope: str) -> list[lease_log.LeaseEntry]:
        """The newest entries of the log (``lease_log.WINDOW`` of them)."""
        tid = self.ticket(scope)
        data = self.desk.reads.search("/transactions", [
            ("query", f"ObjectType = 'RT::Ticket' AND ObjectId = {ticketsql.ticket_id(tid)} "
                      "AND Type = 'Set' AND Field = 'Subject'"),
            ("page", 1), ("per_page", lease_log.WINDOW), ("fields", "Created,NewValue"),
            ("orderby", "id"), ("order", "DESC")])
        items = [i for i in data.get("items") or [] if isinstance(i, dict)]
        entries = []
        for item in items:
            at = mapping.parse_rt_datetime(item.get("Created"))
            entry = lease_log.parse_entry(int(item["id"]), at, item.get("NewValue")) if at \
                else None
            if entry is not None:
                entries.append(entry)
        return entries

    def claim(self, scope: str, holder: str, ttl: float) -> LeaseState:
        self.write(scope, lease_log.CLAIM, holder, ttl)
        entries = self.read(scope)
        # The desk's "now" is the time it wrote our claim: our newest entry.
        mine = [e for e in entries if e.holder == lease_log.clean(holder)]
        if not mine:
            raise DeskError(f"lease {scope!r}: the claim just written is not in the log")
        now = max(mine, key=lambda e: e.order).at
        state = lease_log.holder_of(scope, entries, now)
        log.debug("lease %s: %s claimed, holder %s (%.0f s left)", scope, holder,
                  state.holder, state.remaining)
        return state

    def release(self, scope: str, holder: str) -> None:
        self.write(scope, lease_log.RELEASE, holder, 0)
