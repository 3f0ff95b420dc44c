"""The debts of earlier attempts and runs (rule 4 of ``engine.applier``): the outbox entries a
crash, a failed write or a desk outage left, finished before the new plan is applied.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from incident_ops.desk.port import DeskAuthError, DeskError, ServiceDesk, TicketQuery
from incident_ops.engine.outbox import Outbox, Pending
from incident_ops.engine.outcomes import ActionOutcome, retryable
from incident_ops.model import Ticket
from incident_ops.policy.plan import CREATE, Action

log = logging.getLogger(__name__)


class Replay:
    """The replay part of ``engine.applier.Applier`` (a mixin: what it uses of the applier
    is declared below)."""

    if TYPE_CHECKING:
        desk: ServiceDesk
        outbox: Outbox
        bulk_size: int
        keys: dict[str, tuple[str, ...]]
        pending: dict[str, Pending]
        replayed: dict[str, ActionOutcome]

        def _keep(self) -> None: ...

        def _forget(self, action: Action) -> None: ...

        def _guard(self, action: Action, run: Callable[[Action], ActionOutcome]
                   ) -> ActionOutcome: ...

        def _single(self, action: Action) -> ActionOutcome: ...

        def _follow(self, action: Action, entry: Pending) -> ActionOutcome: ...

        def _outcome(self, action: Action, outcome: str, message: str = "", *,
                     created_id: str | None = None, undelivered: Iterable[str] = (),
                     retry: bool = False) -> ActionOutcome: ...

    def _replay(self, planned: set[str]) -> list[ActionOutcome]:
        """Finish what earlier attempts and runs owe, before this plan.

        Committed entries (the key is on the ticket) are carried on. An entry never
        committed is done now: left to this plan when it decided the same key again (its
        read is newer), else committed as it was planned, on the version it was planned
        from; only a ticket changed since (or gone) drops it, and the plan that read the
        change decided afresh."""
        self.replayed = {}
        entries = [(key, entry, Action.from_dict(entry.action))
                   for key, entry in self.pending.items()]
        on_desk = self._read_owed([a.ticket_id for _, _, a in entries if a.kind != CREATE])
        for key, entry, action in entries:
            self._keep()
            if action.kind != CREATE:
                ticket = on_desk.get(action.ticket_id)
                if isinstance(ticket, DeskError):
                    self.replayed[key] = self._outcome(
                        action, "failed", f"owed since {entry.queued_at}; could not read the "
                        f"ticket: {ticket}", retry=retryable(ticket))
                    continue
                if ticket is None or key not in ticket.automation_keys:
                    outcome = self._uncommitted(key, entry, action, ticket, planned)
                    if outcome is not None:
                        self.replayed[key] = outcome
                    continue
            outcome = self._follow(action, entry)
            outcome.message = (f"owed by run {entry.run_id} since {entry.queued_at}: "
                               f"{outcome.message or outcome.outcome}")
            self.replayed[key] = outcome
            log.info("ticket %s: %s owed by run %s: %s", action.ticket_id, action.kind,
                     entry.run_id, outcome.outcome)
        if len(self.pending) < len(entries):
            self.outbox.save(self.pending)
        return list(self.replayed.values())

    def _uncommitted(self, key: str, entry: Pending, action: Action, ticket: Ticket | None,
                     planned: set[str]) -> ActionOutcome | None:
        """An entry whose desk write never happened. None: this plan does it."""
        if key in planned:
            log.info("ticket %s: %s of run %s was never committed; this plan decided it "
                     "again and does it", action.ticket_id, action.kind, entry.run_id)
            # This plan records its own intent before its commit; the outbox is saved once
            # after the replay, not once per entry (hundreds after a crash).
            self.pending.pop(key, None)
            return None
        if ticket is None:
            self._forget(action)
            return self._outcome(action, "dropped", f"planned by run {entry.run_id}, never "
                                 f"committed, and #{action.ticket_id} is gone from the desk")
        self.keys.setdefault(action.ticket_id, tuple(ticket.automation_keys))
        log.info("ticket %s: %s planned by run %s was never committed; doing it now",
                 action.ticket_id, action.kind, entry.run_id)
        outcome = self._guard(action, self._single)
        if outcome.outcome == "stale":  # _guard forgot the entry
            outcome.outcome = "dropped"
            outcome.message = (f"planned by run {entry.run_id}, never committed, and no longer "
                               f"applies: #{action.ticket_id} changed since it was decided "
                               "(this run's plan read the change and decided afresh)")
        else:
            outcome.message = (f"planned by run {entry.run_id} (never committed), done now"
                               + (f": {outcome.message}" if outcome.message else ""))
        return outcome

    def _read_owed(self, ticket_ids: Sequence[str]) -> dict[str, Ticket | DeskError]:
        """The tickets the outbox owes something on, read in pages of ``bulk_size`` ids
        (after a crash an outbox holds hundreds: one request per page, not per ticket)."""
        wanted = sorted(set(ticket_ids), key=lambda t: (len(t), t))
        found: dict[str, Ticket | DeskError] = {}
        size = max(1, self.bulk_size)
        for start in range(0, len(wanted), size):
            page = wanted[start:start + size]
            try:  # the fenced desk keeps the lease before the search
                found.update((t.id, t) for t in self.desk.search(
                    TicketQuery(queue=None, ids=page)))
            except DeskAuthError:
                raise
            except DeskError as exc:
                found.update((tid, exc) for tid in page if tid not in found)
        return found
