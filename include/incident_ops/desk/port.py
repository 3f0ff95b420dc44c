"""The service-desk port: what the pipelines need from a desk, and the errors it may raise.

Every adapter (Request Tracker 5 today, ServiceNow next) implements ``ServiceDesk`` and
translates its own failures into the exception tree below at its boundary, so the apply
step can tell "try later" (``TransientDeskError``) from "a person changed it" (``StaleTicket``)
from "this ticket is bad" (``RejectedChange``) without knowing which desk it talks to.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from incident_ops.model import ChangeResult, Ticket, TicketChange, TicketDraft

_DEADLINE: ContextVar[float | None] = ContextVar("incident_ops_desk_deadline", default=None)


@contextmanager
def deadline(at: float | None) -> Iterator[None]:
    """Desk calls made inside must be over by ``at`` (a ``time.monotonic()`` value): an
    adapter starts no request, retry or back-off that could outlast it, and cuts its
    timeouts to it (``TransientDeskError`` past it). The engine sets it from the desk lease
    it applies under, so no write of a holder is still in flight when its lease runs out."""
    token = _DEADLINE.set(at)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def call_deadline() -> float | None:
    """The deadline the calls made now must keep (None: no bound)."""
    return _DEADLINE.get()


class DeskError(Exception):
    """Base of every error a desk adapter raises."""

    def __init__(self, message: str, *, ticket_id: str | None = None, field: str | None = None):
        super().__init__(message)
        self.ticket_id = ticket_id
        self.field = field


class DeskAuthError(DeskError):
    """The desk refused our credentials (HTTP 401/403): a configuration problem, not retried."""


class TicketNotFound(DeskError):
    """The ticket does not exist (or we may not see it)."""


class StaleTicket(DeskError):
    """The ticket changed since we read it; the change was not written."""


class RejectedChange(DeskError):
    """The desk refused the change itself (an invalid status move or field value)."""


class TransientDeskError(DeskError):
    """The desk could not answer now (timeouts, resets, 5xx, 429) after bounded retries."""


class BadQuery(DeskError):
    """The desk refused a search (a malformed query): a bug on our side, not retried."""


@dataclass(frozen=True)
class LeaseState:
    """Who holds a lease after a claim, as the desk's own log orders the claims.

    ``holder`` is None when nobody holds it; ``remaining`` is how long the holder's claim
    still runs by the desk's clock (0 when nobody holds it).
    """

    scope: str
    holder: str | None
    remaining: float = 0.0

    def held_by(self, holder: str) -> bool:
        return self.holder == holder and self.remaining > 0


@dataclass(frozen=True)
class TicketQuery:
    """A search over tickets; every criterion given must hold (AND).

    ``fields`` (canonical name -> value) match custom fields exactly; ``field_is_set`` and
    ``field_before`` express "has a value" and "date field earlier than" for the
    due-time searches of 100.8.
    """

    queue: str | None = "Incidents"
    statuses: Sequence[str] = ()
    sources: Sequence[str] = ()
    priorities: Sequence[str] = ()
    updated_since: datetime | None = None
    created_since: datetime | None = None
    created_before: datetime | None = None
    open_only: bool = False
    fields: dict[str, str] = field(default_factory=dict)
    field_is_set: Sequence[str] = ()
    field_unset: Sequence[str] = ()  # custom fields with no value
    field_before: dict[str, datetime] = field(default_factory=dict)
    ids: Sequence[str] = ()
    member_of: Sequence[str] = ()  # duplicates of any of these masters (at most 50)
    has_duplicates: bool | None = None  # True: only masters with duplicates; False: none
    # Links cost RT ~4 ms a ticket that has any. ``with_duplicates``: also read each ticket's
    # direct duplicates (``Ticket.duplicates``). ``master_links=False``: don't read whose
    # duplicate a ticket is; ``duplicate_of`` is then None unless read for the former.
    with_duplicates: bool = False
    master_links: bool = True
    # False: core columns and the duplicate link only, tickets come back ``partial``.
    # Reading custom fields is most of a search's cost on RT (~8 ms a ticket); a duplicate
    # that is only closed with its master's code needs none of them.
    custom_fields: bool = True
    # True: also read each ticket's status and owner history, for ``resolved_at`` of closed
    # tickets and ``responded_at`` (on RT one transaction query per page of tickets).
    history: bool = False


class ServiceDesk(Protocol):
    """The operations the pipelines use. All methods may raise ``DeskError`` subclasses."""

    def search(self, query: TicketQuery) -> Iterator[Ticket]:
        """Every ticket matching ``query``, page by page, oldest update first."""
        ...

    def get(self, ticket_id: str) -> Ticket:
        """One ticket, with ``version`` set for a later conditional update."""
        ...

    def update(self, change: TicketChange) -> None:
        """Write one change; raise ``StaleTicket`` when ``expected_version`` no longer holds."""
        ...

    def bulk_update(self, changes: Sequence[TicketChange]) -> list[ChangeResult]:
        """Write many changes in few requests; one result per change, in order.

        Changes carrying ``expected_version`` are checked against the desk first and come
        back ``stale`` instead of being written when the ticket moved on.
        """
        ...

    def comment(self, ticket_id: str, text: str, *, change: TicketChange | None = None) -> None:
        """Add an internal comment, optionally writing ``change`` in the same transaction."""
        ...

    def create(self, draft: TicketDraft) -> str:
        """Create a ticket once per ``draft.idempotency_key``; a retry returns the same id."""
        ...

    def link_duplicate(self, duplicate_id: str, master_id: str) -> None:
        """Record ``duplicate_id`` as a duplicate of ``master_id`` (idempotent)."""
        ...

    def add_reference(self, ticket_id: str, target_id: str) -> None:
        """Record that ``ticket_id`` refers to ``target_id`` (idempotent)."""
        ...

    def unlink_duplicate(self, duplicate_id: str, master_id: str) -> None:
        """Remove the duplicate link (idempotent); used to break a duplicate cycle."""
        ...

    def attach(self, ticket_id: str, filename: str, content: bytes, mime_type: str,
               *, note: str = "") -> None:
        """Attach a file to the ticket's history, once per file name: a ticket that already
        holds a file of that name is left as it is (a retried attach adds nothing)."""
        ...

    def find_by_key(self, idempotency_key: str, queue: str | None = None) -> str | None:
        """The id of the ticket created under ``idempotency_key``, if any."""
        ...

    def user_email(self, user: str) -> str | None:
        """The e-mail address of a desk user (handlers are desk users)."""
        ...

    def ping(self) -> tuple[bool, str]:
        """A cheap authenticated call: (ok, human-readable message)."""
        ...

    def history_mark(self) -> int:
        """A number that only grows while this desk lives (RT: its newest transaction id).

        One lower than a mark seen before means another desk (re-seeded, rebuilt, restored
        from an older backup): what was read from the old one says nothing about it.
        """
        ...

    def claim_lease(self, scope: str, holder: str, ttl_seconds: float) -> LeaseState:
        """Claim (or renew) the lease on ``scope`` for ``holder`` for ``ttl_seconds``.

        Every claim is appended to a log the desk orders itself; the holder is the first
        claimant after the previous holder released or its claim ran out, so any number of
        concurrent claimants agree on one holder. A claim that finds another holder leaves
        the lease with it (check ``LeaseState.held_by``).
        """
        ...

    def release_lease(self, scope: str, holder: str) -> None:
        """Give the lease on ``scope`` up, if ``holder`` holds it (otherwise a no-op)."""
        ...
