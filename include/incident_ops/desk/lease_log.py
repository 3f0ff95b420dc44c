"""Leases from an append-only log: how any desk that orders its writes gives us a lock.

A desk has no compare-and-swap (RT checks ``If-Match`` and then writes, in two steps, so two
requests that arrive together can both pass), but it does keep a total order of what was
written to one record: its transaction ids. A lease is therefore a log of entries on one
record, each ``claim`` or ``release`` by a holder with a time-to-live, and everybody reads
the holder off the same log the same way:

- entries are taken in the desk's order (transaction id), timed by the desk's clock;
- a claim takes the lease when nobody holds it, when the holder's claim has run out at the
  claim's time, or when it is the holder's own (a renewal);
- a release by the holder frees it; any other entry changes nothing.

Two runs that claim at the same moment both append, both read the log, and both find the
earlier claim the holder: one proceeds, the other waits. The log is read newest first and
only a window of it (``WINDOW`` entries): a holder renews well within its time-to-live, so
its latest claim is always in the window.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from incident_ops.desk.port import LeaseState

CLAIM, RELEASE = "claim", "release"
WINDOW = 100  # newest entries read back; far more than concurrent claimants ever append
SEPARATOR = "|"
PREFIX = "lease"


@dataclass(frozen=True)
class LeaseEntry:
    order: int  # the desk's order of writes (a transaction id)
    at: datetime  # when the desk wrote it (its clock)
    op: str  # claim | release
    holder: str
    ttl: float  # seconds, for a claim


def clean(holder: str) -> str:
    """A holder as the log can hold it (no separator, one line)."""
    return " ".join(holder.replace(SEPARATOR, "/").split())


def entry_text(op: str, holder: str, ttl: float, seq: int) -> str:
    """How an entry is written: ``lease|claim|<holder>|<ttl>|<seq>``; ``seq`` makes each
    entry differ from the last, so the desk records a change even for a renewal."""
    return SEPARATOR.join((PREFIX, op, clean(holder), f"{ttl:g}", str(seq)))


def parse_entry(order: int, at: datetime, text: str | None) -> LeaseEntry | None:
    """The entry a logged value holds; None for anything else (a person's edit, say)."""
    parts = (text or "").split(SEPARATOR)
    if len(parts) != 5 or parts[0] != PREFIX or parts[1] not in (CLAIM, RELEASE):
        return None
    try:
        ttl = float(parts[3])
    except ValueError:
        return None
    return LeaseEntry(order=order, at=at, op=parts[1], holder=parts[2], ttl=ttl)


def holder_of(scope: str, entries: Iterable[LeaseEntry], now: datetime) -> LeaseState:
    """Who holds the lease at ``now`` (the desk's clock), from the log's entries."""
    holder: str | None = None
    until: datetime | None = None
    for entry in sorted(entries, key=lambda e: e.order):
        if entry.op == RELEASE:
            if entry.holder == holder:
                holder, until = None, None
        elif holder is None or entry.holder == holder or (until is not None
                                                          and until <= entry.at):
            holder, until = entry.holder, entry.at + timedelta(seconds=entry.ttl)
    if holder is None or until is None or until <= now:
        return LeaseState(scope, None, 0.0)
    return LeaseState(scope, holder, (until - now).total_seconds())
