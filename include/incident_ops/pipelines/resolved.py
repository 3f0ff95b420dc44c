"""The closure pipeline's fetch and bookkeeping (decide lives in ``policy.closure``).

Fetch reads only what changed: resolved tickets updated since the watermark, the tickets
still awaiting a requester's answer, and the duplicate families around them (a level of
duplicates at a time, in pages), so a run's cost follows the day's resolutions, not the
size of the desk.

What it reads of each ticket follows what the decision needs of it. A duplicate is closed
with its master's close code, never on its own record, so duplicates are read light (core
columns, ``custom_fields=False``; on RT the custom fields are ~90% of a search's cost);
masters, and any duplicate that ends up a root (a self-link or a broken cycle), are read in
full. Going down a family, the links are read on the masters (which duplicates each has),
not on every duplicate: an alarm storm has many duplicates per master. Independent reads go
to the desk ``parallel`` at a time (the desk client's own concurrency cap still holds).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime

from incident_ops.desk.port import ServiceDesk, TicketQuery
from incident_ops.model import CLOSED, CONFIRMATION_PENDING, RESOLVED, Ticket, id_order
from incident_ops.policy.duplicates import DuplicateGraph

log = logging.getLogger(__name__)

ID_CHUNK = 100  # ids per full read (one search page)
MAX_DEPTH = 20  # levels of duplicates followed; deeper chains are reported, not followed
PARALLEL = 2  # independent reads in flight at once


@dataclass
class ClosureBatch:
    resolved: list[Ticket]
    related: list[Ticket]

    @property
    def tickets(self) -> dict[str, Ticket]:
        return {t.id: t for t in [*self.related, *self.resolved]}

    def read_times(self) -> dict[str, datetime]:
        """What the watermark is computed over: each resolved ticket's update time, and for
        a duplicate under a master closed earlier, its master's (the master is what the
        next run would find again, should that duplicate's close not happen now)."""
        times = {t.id: t.updated for t in self.resolved}
        graph = DuplicateGraph([*self.resolved, *self.related])
        for master in self.related:
            if master.status == CLOSED and graph.master_of(master.id) is None:
                for dup in graph.descendants(master.id):
                    times.setdefault(dup.id, master.updated)
        return times


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
        pages = self.pool.map(self.read_full, list(_chunks(sorted(set(ids)), ID_CHUNK)))
        return {t.id: t for page in pages for t in page}

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
        # Masters closed since the last run that have duplicates (read light): any duplicate
        # still open follows the master's code (linked after it closed, or a run stopped
        # between the two closes). Only those masters are then read in full. The first run
        # has no "since": families closed before it are not its business.
        closed = {} if since is None else {t.id: t for t in self.desk.search(TicketQuery(
            statuses=[CLOSED], updated_since=since, has_duplicates=True,
            custom_fields=False))}
        related = self.families(resolved, closed)
        self.complete_closed_masters(closed, resolved, related)
        self.complete_roots(resolved, related)
        log.info("fetched %d resolved tickets and %d related (duplicates and masters), "
                 "%d read in full", len(resolved), len(related),
                 sum(not t.partial for t in [*resolved.values(), *related.values()]))
        return ClosureBatch(resolved=list(resolved.values()), related=list(related.values()))

    def read_full(self, ids: Sequence[str], resolved_only: bool = False) -> list[Ticket]:
        """One page of tickets by id, in full; ``resolved_only`` drops those no longer so."""
        return list(self.desk.search(TicketQuery(
            queue=None, ids=ids, statuses=[RESOLVED] if resolved_only else [])))

    def families(self, resolved: dict[str, Ticket], closed: dict[str, Ticket] | None = None
                 ) -> dict[str, Ticket]:
        """The duplicates below the resolved tickets and the ``closed`` masters (light) and
        the masters above the resolved ones (full)."""
        related: dict[str, Ticket] = {k: v for k, v in (closed or {}).items()
                                      if k not in resolved}
        known = set(resolved) | set(related)
        frontier = sorted(known, key=id_order)
        for _ in range(MAX_DEPTH):  # down: duplicates of duplicates
            # The links of the tickets that have duplicates (a cheap query finds them): one
            # read per master, where reading each duplicate's own link is one per duplicate.
            masters = self.searches(
                TicketQuery(queue=None, ids=ids, has_duplicates=True, custom_fields=False,
                            with_duplicates=True, master_links=False)
                for ids in _chunks(frontier, ID_CHUNK))
            master_of: dict[str, str] = {}
            for master in sorted(masters, key=lambda t: id_order(t.id)):
                for dup in master.duplicates or ():
                    master_of.setdefault(dup, master.id)  # two masters: the lowest id
            frontier = sorted(set(master_of) - known, key=id_order)
            for t in self.searches(TicketQuery(queue=None, ids=ids, custom_fields=False,
                                               master_links=False)
                                   for ids in _chunks(frontier, ID_CHUNK)):
                related[t.id] = replace(t, duplicate_of=master_of[t.id])
                known.add(t.id)
            if not frontier:
                break
        missing = {t.duplicate_of for t in [*resolved.values(), *related.values()]
                   if t.duplicate_of and t.duplicate_of not in known}
        for _ in range(MAX_DEPTH):  # up: masters of resolved duplicates, in full
            if not missing:
                break
            found = self.full(sorted(missing))
            related.update(found)
            known.update(found)
            missing = {t.duplicate_of for t in found.values()
                       if t.duplicate_of and t.duplicate_of not in known}
        return related

    def complete_closed_masters(self, closed: dict[str, Ticket], resolved: dict[str, Ticket],
                                related: dict[str, Ticket]) -> None:
        """Read in full the closed masters with a duplicate not closed yet (their close code
        is what it closes with); forget the others, whose families are done."""
        if not closed:
            return
        graph = DuplicateGraph([*resolved.values(), *related.values()])
        wanted = [m for m in closed if m in related and graph.master_of(m) is None and any(
            d.status != CLOSED for d in graph.descendants(m))]
        for master in set(closed) - set(wanted):
            if master in resolved or graph.master_of(master) is not None:
                continue  # part of a family read for another reason: keep it as read
            for dup in graph.descendants(master):
                related.pop(dup.id, None)
            related.pop(master, None)
        if wanted:
            log.info("reading %d closed masters in full: duplicates of theirs are still open",
                     len(wanted))
            related.update(self.full(wanted))

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


def _chunks(ids: Sequence[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(ids), size):
        yield list(ids[start:start + size])
