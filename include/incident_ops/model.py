"""The canonical incident model: what every desk adapter reads into and every policy reads.

Plain frozen dataclasses, no I/O. Coded fields (status, priority, source, category, system,
close code, ...) are plain strings holding the codes of ``include/config/vocabulary.yaml``:
a value the desk holds that the vocabulary does not know is kept as it is, so a policy can
report it by ticket and field instead of the batch crashing on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

# The statuses the process itself branches on (spec 100.6-100.7). The full list with labels
# lives in the vocabulary; these constants only name the ones code must reason about.
NEW = "new"
ASSIGNED_L1 = "assigned-l1"
ASSIGNED_L2 = "assigned-l2"
IN_PROGRESS = "in-progress"
RESOLVED = "resolved"
CLOSED = "closed"
OPEN_STATUSES = (NEW, ASSIGNED_L1, ASSIGNED_L2, IN_PROGRESS)

UNSUCCESSFUL = "unsuccessful"  # close code of 100.7.3
INCIDENT_QUEUE = "Incidents"

CONFIRMATION_PENDING = "pending"
CONFIRMATION_CONFIRMED = "confirmed"
CONFIRMATION_REJECTED = "rejected"


def id_order(ticket_id: str) -> tuple[int, str]:
    """Sort key for ticket ids: numeric ids in numeric order, any others after them."""
    return (int(ticket_id), ticket_id) if ticket_id.isdigit() else (1 << 62, ticket_id)


@dataclass(frozen=True)
class Ticket:
    """An incident ticket as the process sees it (spec 100.5-100.8)."""

    id: str
    subject: str
    status: str
    priority: str  # urgent | high | medium | low
    created: datetime
    updated: datetime
    queue: str = INCIDENT_QUEUE
    description: str = ""
    impact: str | None = None  # major | high | medium | low
    source: str | None = None  # phone, email, portal, helpdesk, auto-transfer, monitoring
    category: str | None = None  # fault, alarm, request, ...
    system: str | None = None  # affected system type
    dispatched_by_helpdesk: bool = False
    requester: str | None = None  # e-mail address of the person who raised it
    handler: str | None = None  # desk user name of the current/last handler (owner)
    handler_email: str | None = None
    handler_tier: str | None = None  # l1 | l2
    resolver_role: str | None = None  # l1 | l2 | helpdesk (100.6.6)
    solution: str | None = None
    close_code: str | None = None
    recovered_at: datetime | None = None  # business recovery time (faults)
    faulty_vendor: str | None = None
    config_item: str | None = None
    completed_at: datetime | None = None  # actual completion time (100.6.8)
    duplicate_of: str | None = None  # id of the master ticket
    # ids of its direct duplicates, when the search was asked for them (None: not read)
    duplicates: tuple[str, ...] | None = None
    confirmation: str | None = None  # pending | confirmed | rejected
    confirmation_asked_at: datetime | None = None
    escalation: tuple[str, ...] = ()  # rungs already fired (100.8)
    escalation_due: datetime | None = None  # when the next rung falls due
    urgent_notified: str | None = None  # priority already notified under 100.5
    first_line_cannot_handle: bool = False  # 100.5.2
    # From the desk's own record (on RT: ``Resolved`` and the status and owner history):
    # when it was last resolved, when it was closed, when it was first picked up (an owner
    # set or a move out of ``new``; its creation if it was created assigned). ``None`` when
    # it has not happened or, for ``resolved_at`` of a closed ticket and ``responded_at``,
    # when the search did not read the history (``TicketQuery.history``).
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    responded_at: datetime | None = None
    automation_keys: tuple[str, ...] = ()  # idempotency keys of actions already applied
    automation: str | None = None  # the last automated change: step, rule and DAG run
    idempotency_key: str | None = None  # the key a ticket was created under, if any
    version: str | None = None  # the desk's change marker (an ETag, or what a search read as of)
    # Read without its custom fields (a light search, ``TicketQuery(custom_fields=False)``):
    # the fields above that live in custom fields are unknown, not empty, so its record
    # must not be judged (completeness, routing) until it is read in full.
    partial: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def with_changes(self, **changes: Any) -> Ticket:
        return replace(self, **changes)


@dataclass(frozen=True)
class TicketDraft:
    """A ticket to create: a reopened incident, a problem, a report, a change request."""

    queue: str
    subject: str
    description: str
    idempotency_key: str
    status: str | None = None
    priority: str | None = None
    owner: str | None = None
    requester: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)  # canonical field name -> value
    refers_to: tuple[str, ...] = ()


@dataclass(frozen=True)
class TicketChange:
    """A change to write to one ticket: status and/or canonical fields.

    ``expected_version`` is the ticket's version when it was read; the desk refuses the
    change (``StaleTicket``) when the ticket has changed since.
    """

    ticket_id: str
    status: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    expected_version: str | None = None
    owner: str | None = None


Outcome = Literal["done", "skipped", "stale", "failed"]


@dataclass(frozen=True)
class ChangeResult:
    ticket_id: str
    outcome: Outcome
    message: str = ""
