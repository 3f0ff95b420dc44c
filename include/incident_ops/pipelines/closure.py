"""The closure pipeline's fetch and bookkeeping (decide lives in ``policy.closure``).

Fetch reads only what changed: resolved tickets updated since the watermark, the tickets
still awaiting a requester's answer, and the duplicate families around them (one search per
level of duplicates, in chunks), so a run's cost follows the day's resolutions, not the
size of the desk.

What it reads of each ticket follows what the decision needs of it. A duplicate is closed
with its master's close code, never on its own record, so duplicates are read light (core
columns and the link, ``custom_fields=False``; on RT the custom fields are ~90% of a
search's cost); masters, and any duplicate that ends up a root (a self-link or a broken
cycle), are read in full. Independent reads go to the desk ``parallel`` at a time (the
desk client's own concurrency cap still holds).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from incident_ops.desk.port import ServiceDesk, TicketQuery
from incident_ops.model import CONFIRMATION_PENDING, RESOLVED, Ticket
from incident_ops.policy.duplicates import DuplicateGraph

log = logging.getLogger(__name__)

CHUNK = 50  # masters per duplicate search (a join each: RT's limit is 50)
ID_CHUNK = 100  # ids per full read (one search page)
MAX_DEPTH = 20  # levels of duplicates followed; deeper chains are reported, not followed
MAX_EXCLUDED = 200  # known duplicates left out of one link search by id
PARALLEL = 2  # independent reads in flight at once


@dataclass
class ClosureBatch:
    resolved: list[Ticket]
    related: list[Ticket]
    requests: int = 0

    @property
    def tickets(self) -> dict[str, Ticket]:
        return {t.id: t for t in [*self.related, *self.resolved]}


def fetch_closure_batch(desk: ServiceDesk, since: datetime | None, *,
                        parallel: int = PARALLEL) -> ClosureBatch:
    with ThreadPoolExecutor(max_workers=max(1, parallel),
                            thread_name_prefix="closure-fetch") as pool:
        return _Fetch(desk, pool).run(since)


class _Fetch:
    def __init__(self, desk: ServiceDesk, pool: Executor) -> None:
        self.desk = desk
        self.pool = pool

    def searches(self, queries: Iterable[TicketQuery]) -> list[Ticket]:
        """Every ticket of ``queries``, run side by side, in the order of the queries."""
        found = self.pool.map(lambda q: list(self.desk.search(q)), list(queries))
        return [t for batch in found for t in batch]

    def full(self, ids: Sequence[str]) -> dict[str, Ticket]:
        """``ids`` read in full (any queue and status), pages side by side."""
        return {t.id: t for t in self.searches(
            TicketQuery(queue=None, ids=chunk) for chunk in _chunks(sorted(set(ids)), ID_CHUNK))}

    def run(self, since: datetime | None) -> ClosureBatch:
        pending = self.pool.submit(lambda: list(self.desk.search(TicketQuery(
            statuses=[RESOLVED], fields={"confirmation": CONFIRMATION_PENDING}))))
        # Resolved tickets, light; those that are not duplicates are read again in full, a
        # page at a time while the light search goes on. One that stopped being resolved in
        # between is left out: it changed, and the next run reads it again.
        light: list[Ticket] = []
        reads: list[Future[list[Ticket]]] = []
        masters: list[str] = []
        for ticket in self.desk.search(TicketQuery(statuses=[RESOLVED], updated_since=since,
                                                   custom_fields=False)):
            light.append(ticket)
            if not ticket.duplicate_of:
                masters.append(ticket.id)
            if len(masters) == ID_CHUNK:
                reads.append(self.pool.submit(self.read_full, masters, True))
                masters = []
        if masters:
            reads.append(self.pool.submit(self.read_full, masters, True))
        full = {t.id: t for read in reads for t in read.result()}
        resolved = {t.id: full.get(t.id, t) for t in light
                    if t.duplicate_of or t.id in full}
        for t in pending.result():
            if t.id not in resolved or resolved[t.id].partial:
                resolved[t.id] = t
        related = self.families(resolved)
        self.complete_roots(resolved, related)
        log.info("fetched %d resolved tickets and %d related (duplicates and masters), "
                 "%d read in full", len(resolved), len(related),
                 sum(not t.partial for t in [*resolved.values(), *related.values()]))
        return ClosureBatch(resolved=list(resolved.values()), related=list(related.values()))

    def read_full(self, ids: Sequence[str], resolved_only: bool = False) -> list[Ticket]:
        """One page of tickets by id, in full; ``resolved_only`` drops those no longer so."""
        return list(self.desk.search(TicketQuery(
            queue=None, ids=ids, statuses=[RESOLVED] if resolved_only else [])))

    def families(self, resolved: dict[str, Ticket]) -> dict[str, Ticket]:
        """The duplicates below the resolved tickets (light) and the masters above (full)."""
        related: dict[str, Ticket] = {}
        known = set(resolved)
        # Duplicates already read (a resolved duplicate is in ``resolved``) are left out of
        # the searches below by id: reading a ticket costs the desk more than a longer query.
        members: dict[str, list[str]] = {}
        for t in resolved.values():
            if t.duplicate_of:
                members.setdefault(t.duplicate_of, []).append(t.id)
        frontier = sorted(resolved)
        for _ in range(MAX_DEPTH):  # down: duplicates of duplicates
            # Which of them have duplicates at all: a cheap query, where a duplicate search
            # is a join per master (most resolved tickets have none).
            parents = sorted(t.id for t in self.searches(
                TicketQuery(queue=None, ids=ids, has_duplicates=True, custom_fields=False)
                for ids in _chunks(frontier, ID_CHUNK)))
            found = self.searches(
                TicketQuery(queue=None, member_of=ids, custom_fields=False,
                            exclude_ids=_known_members(ids, members))
                for ids in _chunks(parents, CHUNK))
            frontier = sorted({t.id for t in found} - known)
            for t in found:
                if t.id not in known:
                    related[t.id] = t
                    known.add(t.id)
            if not frontier:
                break
        missing = {t.duplicate_of for t in [*resolved.values(), *related.values()]
                   if t.duplicate_of and t.duplicate_of not in known}
        for _ in range(MAX_DEPTH):  # up: masters of resolved duplicates, in full
            if not missing:
                break
            masters = self.full(sorted(missing))
            related.update(masters)
            known.update(masters)
            missing = {t.duplicate_of for t in masters.values()
                       if t.duplicate_of and t.duplicate_of not in known}
        return related

    def complete_roots(self, resolved: dict[str, Ticket], related: dict[str, Ticket]) -> None:
        """Read in full the light tickets the decision will judge on their own record: those
        left without a master once self-links and cycles are broken."""
        graph = DuplicateGraph([*resolved.values(), *related.values()])
        roots = [tid for tid, t in graph.tickets.items()
                 if t.partial and graph.master_of(tid) is None]
        if not roots:
            return
        log.info("reading %d duplicates in full: self-linked or in a cycle", len(roots))
        for tid, ticket in self.full(roots).items():
            if tid not in resolved:
                related[tid] = ticket
            elif ticket.status == RESOLVED:
                resolved[tid] = ticket
            else:
                del resolved[tid]  # changed since the light read: the next run reads it


def _known_members(masters: Sequence[str], members: dict[str, list[str]]) -> list[str]:
    """Already-read duplicates of ``masters``, at most ``MAX_EXCLUDED`` (an optimisation:
    any left out of the list are read again and dropped as known)."""
    return [m for master in masters for m in members.get(master, ())][:MAX_EXCLUDED]


def _chunks(ids: Sequence[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(ids), size):
        yield list(ids[start:start + size])
