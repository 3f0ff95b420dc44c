"""The outbox: what an applied action still owes (messages, a reopened copy, links, notes).

An action is committed by one desk write (its key recorded on the ticket); what follows it
(mails, SMS, creating the reopened copy, linking, attaching the report) happens after. The
outbox records those follow-ups *before* the commit and strikes each one off once it has
happened, so whatever stops the apply half way (a mail server answering 451, the task killed,
the desk going away) leaves a record the next attempt or run finishes from:

- an entry whose action was committed (the key is on the ticket) is carried on: the
  follow-ups not yet struck off are done, in order; a message is sent again until it goes
  out, always under the same Message-ID / Idempotency-Key;
- an entry whose action was not committed is dropped: nothing happened, and the next plan
  decides afresh.

Entries are only read and written while the scope's lease is held (``engine.lease``), so
two runs never edit the outbox at once. The Airflow binding keeps it in a Variable
(``airflow/outbox.py``); ``MemoryOutbox`` serves the unit tests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass
class Pending:
    action: dict[str, Any]  # Action.to_dict()
    run_id: str  # the run that planned it
    queued_at: str  # ISO time it was first queued
    done: list[int] = field(default_factory=list)  # follow-ups struck off, by index
    results: dict[str, Any] = field(default_factory=dict)  # e.g. the reopened copy's id
    attempts: int = 0  # apply attempts that tried its follow-ups
    last_error: str = ""

    @property
    def key(self) -> str:
        return str(self.action["key"])

    @property
    def ticket_id(self) -> str:
        return str(self.action["ticket_id"])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pending:
        return cls(action=dict(data["action"]), run_id=str(data["run_id"]),
                   queued_at=str(data["queued_at"]), done=[int(i) for i in data.get("done", [])],
                   results=dict(data.get("results") or {}),
                   attempts=int(data.get("attempts", 0)),
                   last_error=str(data.get("last_error", "")))


class Outbox(Protocol):
    """Durable storage of the pending entries of one scope (written whole)."""

    def load(self) -> dict[str, Pending]: ...

    def save(self, entries: dict[str, Pending]) -> None: ...


class MemoryOutbox:
    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {}
        self.saves = 0

    def load(self) -> dict[str, Pending]:
        return {k: Pending.from_dict(v) for k, v in self.entries.items()}

    def save(self, entries: dict[str, Pending]) -> None:
        self.entries = {k: v.to_dict() for k, v in entries.items()}
        self.saves += 1
