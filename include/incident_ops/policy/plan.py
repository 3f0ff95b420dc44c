"""The output of every decide step: a ``Plan`` of ``Action``s plus ``Finding``s about bad input.

An action says what to change on one ticket, which rule and process step asked for it, and
carries a deterministic idempotency key: the apply step writes the key onto the ticket with
the change and skips an action whose key the ticket already carries, so a retried or
overlapping run never does the same thing twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from incident_ops.model import TicketDraft

# Kinds of action, named after what a person at the desk would say they did.
CLOSE = "close"  # 100.7.1 / 100.7.4
CASCADE_CLOSE = "cascade_close"  # 100.7.1: a duplicate closed with its master's code
BOUNCE = "bounce"  # 100.6: incomplete record back to its resolver
ASK_CONFIRMATION = "ask_confirmation"  # 100.7.2
REMIND_HELPDESK = "remind_helpdesk"  # 100.7.2, no answer in time
REOPEN = "reopen"  # 100.7.3
BREAK_LINK = "break_link"  # a duplicate cycle or self-link, broken at one edge
NOTIFY = "notify"  # 100.5 / 100.8 / 101: messages, recorded on the ticket with a comment
ESCALATE = "escalate"  # 100.8: a rung of the ladder
RECORD = "record"  # 101: write fields onto a ticket (the business recovery time)
CREATE = "create"  # 101: a new ticket (change request, major incident report, problem)


@dataclass(frozen=True)
class Notice:
    """A message to send, as a template and its context (rendered by ``notify``)."""

    template: str
    to: tuple[str, ...]
    context: dict[str, Any]
    channel: str = "email"  # email | sms
    cc: tuple[str, ...] = ()
    # files to attach: {"key" (in the artefact store) or "path", "name", "mime"}
    attachments: tuple[dict[str, str], ...] = ()


@dataclass(frozen=True)
class Action:
    kind: str
    ticket_id: str
    step: str  # the process step, e.g. "100.7.1"
    rule: str  # the rule that decided it, e.g. "close.auto-source"
    key: str  # idempotency key, written on the ticket when applied
    reason: str  # one line a person can read in the plan
    status: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    comment: str | None = None
    notices: tuple[Notice, ...] = ()
    create: TicketDraft | None = None
    expected_version: str | None = None
    master_id: str | None = None
    unlink_from: str | None = None  # BREAK_LINK: the master link to remove
    # Files to attach once the action is committed (to the created ticket, else to the
    # action's own): {"key" or "path", "name", "mime", "note"}.
    attachments: tuple[dict[str, str], ...] = ()
    move_duplicates: tuple[str, ...] = ()  # REOPEN: open duplicates that follow the copy

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, and complete: ``from_dict`` rebuilds the same action (XCom)."""
        return _jsonable(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Action:
        data = dict(data)
        data["fields"] = {k: _revive(k, v) for k, v in (data.get("fields") or {}).items()}
        data["notices"] = tuple(
            Notice(**{**n, "to": tuple(n["to"]), "cc": tuple(n.get("cc", ())),
                      "attachments": tuple(dict(a) for a in n.get("attachments") or ())})
            for n in data.get("notices") or ())
        data["attachments"] = tuple(dict(a) for a in data.get("attachments") or ())
        data["move_duplicates"] = tuple(data.get("move_duplicates") or ())
        if data.get("create"):
            draft = dict(data["create"])
            draft["refers_to"] = tuple(draft.get("refers_to", ()))
            draft["fields"] = {k: _revive(k, v) for k, v in (draft.get("fields") or {}).items()}
            data["create"] = TicketDraft(**draft)
        return cls(**data)


@dataclass(frozen=True)
class Finding:
    """Something wrong with the input, named by ticket and field; the batch goes on."""

    ticket_id: str
    field: str
    message: str
    severity: str = "error"  # error | warning

    def __str__(self) -> str:
        return f"ticket {self.ticket_id}, field {self.field}: {self.message}"


@dataclass
class Plan:
    pipeline: str
    run_id: str
    actions: list[Action] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    waiting: dict[str, str] = field(default_factory=dict)  # ticket id -> why it waits
    # About the run rather than a ticket: e.g. the SLA calendar lacks a year's data.
    warnings: list[str] = field(default_factory=list)

    def by_kind(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for action in self.actions:
            counts[action.kind] = counts.get(action.kind, 0) + 1
        return counts

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        return cls(pipeline=data["pipeline"], run_id=data["run_id"],
                   actions=[Action.from_dict(a) for a in data.get("actions", [])],
                   findings=[Finding(**f) for f in data.get("findings", [])],
                   waiting=dict(data.get("waiting", {})),
                   warnings=list(data.get("warnings", [])))

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "run_id": self.run_id,
            "summary": self.by_kind(),
            "actions": [a.to_dict() for a in self.actions],
            "findings": [asdict(f) for f in self.findings],
            "waiting": dict(self.waiting),
            "warnings": list(self.warnings),
        }


def action_key(*parts: object) -> str:
    """A short deterministic key: readable prefix plus a hash of every part."""
    text = "|".join(str(p) for p in parts)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    return f"{parts[0]}:{digest}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


DATETIME_FIELDS = {"recovered_at", "completed_at", "confirmation_asked_at", "escalation_due",
                   "resolved_at", "closed_at"}


def _revive(name: str, value: Any) -> Any:
    if name in DATETIME_FIELDS and isinstance(value, str):
        return datetime.fromisoformat(value)
    if isinstance(value, list):
        return tuple(value)
    return value
