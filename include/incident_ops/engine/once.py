"""Once: an effect recorded only after it happened, and not done again while its record stands.

This is the rule the applier keeps for every message of a plan (a follow-up is struck off the
outbox only after the send went through) in one small primitive for the sends that are not
part of a plan: the queue snapshot mail of a run and the manager report of a period.

- The record is written **after** the effect: a send that fails (or a task killed before it
  returns) leaves no record, so the retry sends; nothing is lost.
- A record that stands stops the effect: a retried, re-run or backfilled task finds it and
  does nothing (``again`` overrides, e.g. a run triggered with ``resend``).
- The window between the effect and its record (killed just after the server took the mail)
  is closed at the receiver: the caller sends under a stable key (the same Message-ID), so a
  second copy is the same message.
- Two runs at once are kept apart by the caller's lease on the scope (``engine.lease``), held
  around ``once``; the ledger itself is only read and written under it.

A ledger keeps every record, oldest first, so a resend's history stays readable (who was
mailed when, under which Message-ID).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from incident_ops.artefacts import ArtefactStore, LocalStore


class Ledger(Protocol):
    """Where "it happened" is written down: a list of records, oldest first."""

    def records(self) -> list[dict[str, Any]]: ...

    def record(self, entry: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class Done:
    """What ``once`` did: ``acted`` (the effect ran now) and the record that stands."""

    acted: bool
    record: dict[str, Any] | None
    history: int  # how many records the ledger holds now

    @property
    def again(self) -> bool:
        """The effect had happened before (this call skipped it, or repeated it on purpose)."""
        return self.history > 1 or not self.acted


def once(ledger: Ledger, act: Callable[[], dict[str, Any]], *, again: bool = False) -> Done:
    """Run ``act`` unless ``ledger`` records it already (or ``again``); record its result after.

    ``act`` returns the record (e.g. the Message-ID the server took); if it raises, nothing
    is recorded and the exception goes on, so the caller's retry runs it again.
    """
    before = ledger.records()
    if before and not again:
        return Done(acted=False, record=before[-1], history=len(before))
    entry = act()
    ledger.record(entry)
    return Done(acted=True, record=entry, history=len(before) + 1)


class StoreLedger:
    """A ledger in one JSON object of the artefact store:
    ``{"sends": [record, ...], **the last record}``.

    The last record's fields at the top level keep the object readable at a glance (and keep
    the markers written by earlier versions, a single record or a bare timestamp, readable
    as one record).
    """

    def __init__(self, store: ArtefactStore, key: str) -> None:
        self.store = store
        self.key = key

    @property
    def where(self) -> str:
        return self.store.url(self.key)

    def records(self) -> list[dict[str, Any]]:
        try:
            text = self.store.read_bytes(self.key).decode("utf-8")
        except FileNotFoundError:
            return []
        try:
            marker = json.loads(text)
        except ValueError:
            return [{"sent_at": text.strip()}]  # a marker of before: the time it was sent
        if not isinstance(marker, dict):
            return [{"sent_at": str(marker)}]
        return [dict(r) for r in marker.get("sends") or [marker]]

    def record(self, entry: dict[str, Any]) -> None:
        sends = [*self.records(), entry]
        first = sends[0].get("message_id")
        text = json.dumps({"first_message_id": first, "sends": sends, **entry},
                          ensure_ascii=False, indent=1, sort_keys=True)
        self.store.write_bytes(self.key, text.encode("utf-8"))


class FileLedger(StoreLedger):
    """A ``StoreLedger`` in a file of this host's folder (tests, tools)."""

    def __init__(self, path: Path) -> None:
        super().__init__(LocalStore(path.parent), path.name)
        self.path = path
