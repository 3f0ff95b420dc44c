"""The closure pipeline's fetch and bookkeeping (decide lives in ``policy.closure``).

Fetch reads only what changed: resolved tickets updated since the watermark, the tickets
still awaiting a requester's answer, and the duplicate families around them (one search per
level of duplicates, in chunks), so a run's cost follows the day's resolutions, not the
size of the desk.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from incident_ops.desk.port import ServiceDesk, TicketQuery
from incident_ops.model import CONFIRMATION_PENDING, RESOLVED, Ticket

log = logging.getLogger(__name__)

CHUNK = 50  # ids per link search: keeps each TicketSQL query short
MAX_DEPTH = 20  # levels of duplicates followed; deeper chains are reported, not followed
MAX_EXCLUDED = 200  # known duplicates left out of one link search by id


@dataclass
class ClosureBatch:
    resolved: list[Ticket]
    related: list[Ticket]
    requests: int = 0

    @property
    def tickets(self) -> dict[str, Ticket]:
        return {t.id: t for t in [*self.related, *self.resolved]}


def fetch_closure_batch(desk: ServiceDesk, since: datetime | None) -> ClosureBatch:
    resolved: dict[str, Ticket] = {}
    for t in desk.search(TicketQuery(statuses=[RESOLVED], updated_since=since)):
        resolved[t.id] = t
    for t in desk.search(TicketQuery(statuses=[RESOLVED],
                                     fields={"confirmation": CONFIRMATION_PENDING})):
        resolved.setdefault(t.id, t)
    related: dict[str, Ticket] = {}
    known = set(resolved)
    # Duplicates already read (a resolved duplicate is in ``resolved``) are left out of the
    # searches below by id: reading a ticket costs the desk far more than a longer query.
    members: dict[str, list[str]] = {}
    for t in resolved.values():
        if t.duplicate_of:
            members.setdefault(t.duplicate_of, []).append(t.id)
    frontier = sorted(resolved)
    for _ in range(MAX_DEPTH):  # down: duplicates of duplicates
        found = [t for ids in _chunks(frontier) for t in desk.search(TicketQuery(
            queue=None, member_of=ids, exclude_ids=_known_members(ids, members)))]
        frontier = sorted({t.id for t in found} - known)
        for t in found:
            if t.id not in known:
                related[t.id] = t
                known.add(t.id)
        if not frontier:
            break
    missing = {t.duplicate_of for t in [*resolved.values(), *related.values()]
               if t.duplicate_of and t.duplicate_of not in known}
    for _ in range(MAX_DEPTH):  # up: masters of resolved duplicates
        if not missing:
            break
        found = [t for ids in _chunks(sorted(missing)) for t in
                 desk.search(TicketQuery(queue=None, ids=ids))]
        for t in found:
            related[t.id] = t
            known.add(t.id)
        missing = {t.duplicate_of for t in found if t.duplicate_of and t.duplicate_of not in known}
    log.info("fetched %d resolved tickets and %d related (duplicates and masters)",
             len(resolved), len(related))
    return ClosureBatch(resolved=list(resolved.values()), related=list(related.values()))


def _known_members(masters: Sequence[str], members: dict[str, list[str]]) -> list[str]:
    """Already-read duplicates of ``masters``, at most ``MAX_EXCLUDED`` (an optimisation:
    any left out of the list are read again and dropped as known)."""
    return [m for master in masters for m in members.get(master, ())][:MAX_EXCLUDED]


def _chunks(ids: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start:start + CHUNK])
