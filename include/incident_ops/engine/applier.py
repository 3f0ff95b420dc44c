"""Carrying out a ``Plan`` against the desk and the senders, once, whatever fails or overlaps.

The rules (docs/exactly-once.md has the failure cases they cover):

1. **One apply per scope at a time.** The whole apply holds the scope's desk lease
   (``engine.lease``): a second run of the same pipeline, a zombie task and its retry, a
   manual trigger racing the schedule, all wait their turn (or defer to the next run) and
   then find the tickets changed: nothing is done twice.
2. **A desk write commits an action.** It is conditional on the version the plan was made
   from (a ticket a person changed since is ``stale``, left for the next run), records the
   action's key on the ticket (``Automation Keys``) and names the rule and run
   (``Automation``); a comment goes in the same desk transaction. Actions planned without a
   version (the emergency's) are written on a fresh read, skipped when the key is there.
3. **What follows a commit is owed until done.** Messages, the reopened copy and its links,
   files, notes: recorded in the outbox (``engine.outbox``) *before* the commit, struck off
   one by one after. A message that did not go out stays owed and is sent by the next
   attempt or run, always under the same key (Message-ID, Idempotency-Key): delivered at
   least once, and at most once but for a crash between the server's "accepted" and our
   record of it.
4. **A planned action is done or shown undone, never forgotten.** An outbox entry whose
   action an earlier attempt or run never committed (killed first, the desk down, a write
   that failed) is done now: by this plan when it decided the same key again (on a newer
   read), else as it was planned, on the version it was planned from. Only a ticket changed
   since makes it ``dropped``, named on the plan page: the plan that read the change decided
   afresh.
5. **A family closes whole.** Duplicates are closed only after their master's close
   succeeded in this apply (or was done before); when the master is stale or fails, its
   duplicates wait with it.
6. **One ticket's failure is recorded and the batch goes on**; an authentication failure
   stops the run (no other ticket would escape it).

The parts: ``engine.outcomes`` (what an apply reports), ``engine.followups`` (rule 3's
follow-ups) and ``engine.replay`` (rule 4's debts); ``Applier`` joins them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from incident_ops.artefacts import ArtefactStore
from incident_ops.desk.port import DeskAuthError, DeskError, ServiceDesk, StaleTicket, TicketQuery
from incident_ops.engine.followups import AlreadyDone, FollowUps, Notifier, effects_of
from incident_ops.engine.lease import Fenced, Lease, LeaseBusy, LeaseLost
from incident_ops.engine.outbox import MemoryOutbox, Outbox, Pending
from incident_ops.engine.outcomes import ActionOutcome, Applied, retryable
from incident_ops.engine.replay import Replay
from incident_ops.model import TicketChange
from incident_ops.policy.plan import BREAK_LINK, CASCADE_CLOSE, CLOSE, CREATE, Action, Notice, Plan
from incident_ops.policy.rules import stamp

# Kept importable from here (the engine's callers and tests name them so).
__all__ = ["ActionOutcome", "Applied", "Applier", "Notifier", "audit_fields", "effects_of",
           "retryable"]

log = logging.getLogger(__name__)

KEYS_KEPT = 60  # the newest idempotency keys kept on a ticket; older actions are long final
# A bulk write is sized to take at most this part of the lease's time-to-live at the speed
# the desk showed on the previous one: a slow desk gets smaller requests, so none can run
# long past the deadline its holder gives up at (docs/exactly-once.md, the fencing window).
CHUNK_PART = 0.1
# The first bulk write of an apply is a probe of this size (the desk's speed is not known
# yet), and none is made smaller: below it a request's fixed cost, not its size, is its time.
MIN_CHUNK = 10
FINAL_KINDS = (CLOSE, CASCADE_CLOSE)
FRESH_ATTEMPTS = 4  # a write on a fresh read is tried again this often when someone wrote
DONE_KINDS = ("done", "skipped")  # outcomes after which a master's family may close


def audit_fields(action: Action, run_id: str, keys: Sequence[str]) -> dict[str, Any]:
    """The fields every automated write carries: the rule, the run and the key.

    A close is final (no pipeline reads a closed ticket again and no one can reopen it), so
    its key is not written: that halves the custom-field changes of a bulk close, the
    pipeline's biggest write.
    """
    audit: dict[str, Any] = {"automation": stamp(action.step, action.rule, run_id)}
    if action.kind not in FINAL_KINDS:
        kept = [k for k in keys if k != action.key][-(KEYS_KEPT - 1):]
        audit["automation_keys"] = (*kept, action.key)
    return audit


def _bulkable(action: Action) -> bool:
    """Plain conditional field/status writes: nothing follows them, no comment."""
    return (action.kind not in (BREAK_LINK, CREATE) and not action.notices
            and not action.comment and action.create is None and not action.attachments
            and action.expected_version is not None)


class Applier(Replay, FollowUps):
    """Applies plans of one scope (a pipeline, an emergency).

    ``known_keys`` (per ``apply``) holds, per ticket, the idempotency keys it carried when
    the plan was made: the keys field is rewritten whole, so it must start from what is there.
    """

    def __init__(self, desk: ServiceDesk, notifier: Notifier, run_id: str, *,
                 outbox: Outbox | None = None, lease: Lease | None = None,
                 bulk_size: int = 100,
                 resolve_address: Callable[[str], str | None] | None = None,
                 render_context: Callable[[Notice], Mapping[str, Any]] | None = None,
                 artefacts: ArtefactStore | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        # Under a lease every desk call keeps it first and must end before it could run out.
        self.fenced = Fenced(desk, lease) if lease is not None else None
        self.desk: ServiceDesk = cast(ServiceDesk, self.fenced) if self.fenced else desk
        self.notifier = notifier
        self.run_id = run_id
        self.outbox = outbox if outbox is not None else MemoryOutbox()
        self.lease = lease
        self.bulk_size = bulk_size
        self.resolve_address = resolve_address or self._desk_user_address
        self.artefacts = artefacts  # where attachments named by key are read from
        # What a message gets only when it is rendered, never in a plan, XCom or outbox
        # (the requester's signed answer links: ``policy.answers``).
        self.render_context = render_context
        self.clock = clock
        self.keys: dict[str, tuple[str, ...]] = {}
        self.pending: dict[str, Pending] = {}
        self.replayed: dict[str, ActionOutcome] = {}

    # -- the one entry point ---------------------------------------------------------------

    def apply(self, plan: Plan, known_keys: Mapping[str, Sequence[str]] | None = None
              ) -> Applied:
        self.keys = {tid: tuple(keys) for tid, keys in (known_keys or {}).items()}
        if self.lease is not None:
            try:
                self.lease.acquire()
            except LeaseBusy as busy:
                log.warning("%s; this run's %d actions are left for the next run", busy,
                            len(plan.actions))
                return Applied([self._outcome(a, "deferred", f"{busy}; left for the next run")
                                for a in plan.actions])
        outcomes: dict[str, ActionOutcome] = {}
        replayed: list[ActionOutcome] = []
        try:
            self.pending = self.outbox.load()
            replayed = self._replay({a.key for a in plan.actions})
            self._apply(plan, outcomes)
        except LeaseLost as lost:
            log.warning("%s: the rest of the plan is left for the next run", lost)
            for action in plan.actions:
                outcomes.setdefault(action.key, self._outcome(
                    action, "deferred", f"{lost}; left for the next run"))
        finally:
            if self.lease is not None:
                self.lease.release()
            if self.fenced is not None and self.fenced.tightest is not None:
                log.info("lease %s: %d desk calls, each ended at least %.1f s before the lease "
                         "could run out", self.lease.scope if self.lease else "",
                         self.fenced.calls, self.fenced.tightest)
        return Applied([outcomes[a.key] for a in plan.actions if a.key in outcomes], replayed)

    # -- the plan ------------------------------------------------------------------------

    def _apply(self, plan: Plan, outcomes: dict[str, ActionOutcome]) -> None:
        todo: list[Action] = []
        for action in plan.actions:
            if action.key in self.replayed:
                outcomes[action.key] = self.replayed[action.key]
            elif action.key in self.keys.get(action.ticket_id, ()):
                outcomes[action.key] = self._outcome(action, "skipped", "already done")
            else:
                todo.append(action)
        touched: set[str] = set()
        links: list[Action] = []
        bulk: list[Action] = []
        cascades: list[Action] = []
        singles: list[Action] = []
        for action in todo:
            if action.kind == BREAK_LINK:
                links.append(action)
            # A ticket gets at most one bulk write per run; anything after it goes singly
            # and will find the ticket's version moved on (stale -> next run).
            elif _bulkable(action) and action.ticket_id not in touched:
                (cascades if action.kind == CASCADE_CLOSE else bulk).append(action)
            else:
                singles.append(action)
            touched.add(action.ticket_id)
        for action in links:
            self._keep()
            outcomes[action.key] = self._guard(action, self._break_link)
        self._bulk_all(bulk, outcomes)
        # Families right after their masters: a duplicate closes only once its master closed
        # (now, or in an earlier run); a stale or failed master keeps its family waiting. A
        # master that goes singly (rare) has its family closed after the singles.
        single_masters = {a.ticket_id for a in singles if a.kind != CASCADE_CLOSE}
        self._cascades([a for a in cascades if a.master_id not in single_masters],
                       bulk, outcomes)
        intents = [a for a in singles if effects_of(a)]
        if intents:
            now = self.clock().isoformat()
            for action in intents:
                self.pending[action.key] = Pending(action.to_dict(), self.run_id, now)
            self.outbox.save(self.pending)
        for action in singles:
            self._keep()
            outcomes[action.key] = self._guard(action, self._single)
        self._cascades([a for a in cascades if a.master_id in single_masters], singles,
                       outcomes)

    def _cascades(self, cascades: list[Action], masters: list[Action],
                  outcomes: dict[str, ActionOutcome]) -> None:
        done = {a.ticket_id: outcomes[a.key] for a in masters
                if a.kind != CASCADE_CLOSE and a.key in outcomes}
        ready = []
        for action in cascades:
            master = done.get(action.master_id or "")
            if master is None or master.outcome in DONE_KINDS:
                ready.append(action)
            else:
                outcomes[action.key] = self._outcome(
                    action, "waiting", f"its master #{action.master_id} was {master.outcome}; "
                    "the family closes together in a later run")
        self._bulk_all(ready, outcomes)

    def _keep(self) -> None:
        if self.lease is not None:
            self.lease.keep()

    def _guard(self, action: Action, run: Callable[[Action], ActionOutcome]) -> ActionOutcome:
        try:
            return run(action)
        except DeskAuthError:
            raise
        except AlreadyDone:
            return self._committed_earlier(action)
        except StaleTicket as exc:
            if action.expected_version is not None and self._key_on_ticket(action):
                return self._committed_earlier(action)  # an earlier attempt of this plan
            self._forget(action)
            return self._outcome(action, "stale", f"changed by someone since fetched: {exc}")
        except DeskError as exc:
            log.warning("ticket %s: %s failed: %s", action.ticket_id, action.kind, exc)
            # Left in the outbox: whether the write landed is read off the ticket next time,
            # and the action is done then if it did not.
            return self._outcome(action, "failed", str(exc), retry=retryable(exc))

    def _committed_earlier(self, action: Action) -> ActionOutcome:
        """The key is on the ticket already: another attempt or run did it, and the
        replay at the start of this apply finished whatever it still owed (any entry of
        this key still in the outbox is the intent this apply put before it found out)."""
        self._forget(action)
        return self._outcome(action, "skipped", "done by an earlier attempt")

    def _key_on_ticket(self, action: Action) -> bool:
        try:
            return action.key in self.desk.get(action.ticket_id).automation_keys
        except DeskError:
            return False

    def _forget(self, action: Action) -> None:
        if self.pending.pop(action.key, None) is not None:
            self.outbox.save(self.pending)

    # -- bulk closes -----------------------------------------------------------------------

    def _bulk_all(self, actions: list[Action], outcomes: dict[str, ActionOutcome]) -> None:
        start = 0
        size = max(1, min(self.bulk_size, MIN_CHUNK) if self.lease is not None
                   else self.bulk_size)
        while start < len(actions):
            self._keep()
            chunk = actions[start:start + size]
            began = self.lease.clock() if self.lease is not None else 0.0
            for outcome in self._bulk(chunk):
                outcomes[outcome.key] = outcome
            start += len(chunk)
            if self.lease is not None:
                size = self._chunk_size(size, len(chunk), self.lease.clock() - began)

    def _chunk_size(self, size: int, done: int, took: float) -> int:
        """The next bulk write's size: what the desk can do in ``CHUNK_PART`` of the lease
        at the speed it just showed (never above ``bulk_size``, never below 1)."""
        assert self.lease is not None
        if took <= 0:
            return size
        fits = int(self.lease.ttl * CHUNK_PART * done / took)
        new = max(1, min(self.bulk_size, max(MIN_CHUNK, fits)))
        if new < size:
            log.info("bulk writes of %d took %.1f s (%.0f%% of the lease's %.0f s): next ones "
                     "of %d", done, took, 100 * took / self.lease.ttl, self.lease.ttl, new)
        return new

    def _bulk(self, actions: list[Action]) -> list[ActionOutcome]:
        changes = [self._change(a, self.keys.get(a.ticket_id, ()), a.expected_version)
                   for a in actions]
        try:
            results = self.desk.bulk_update(changes)
        except DeskAuthError:
            raise
        except DeskError as exc:
            return [self._outcome(a, "failed", f"bulk update failed: {exc}",
                                  retry=retryable(exc)) for a in actions]
        stale = [a for a, r in zip(actions, results, strict=True) if r.outcome == "stale"]
        ours = self._done_by_this_run(stale)
        out = []
        for action, result in zip(actions, results, strict=True):
            if action.ticket_id in ours:
                out.append(self._outcome(action, "skipped", "done by an earlier attempt"))
            elif result.outcome == "stale":
                out.append(self._outcome(action, "stale", result.message or
                                         "changed by someone since fetched; left for the "
                                         "next run"))
            else:
                out.append(self._outcome(action, result.outcome, result.message))
        return out

    def _done_by_this_run(self, actions: Sequence[Action]) -> set[str]:
        """Of ``actions`` found changed, those an earlier attempt of this run carried out."""
        if not actions:
            return set()
        wanted = {a.ticket_id: a for a in actions}
        try:
            now = self.desk.search(TicketQuery(queue=None, ids=sorted(wanted)))
            mark = f"run {self.run_id}"
            return {t.id for t in now if t.status == wanted[t.id].status
                    and mark in (t.automation or "")}
        except DeskError:
            return set()

    # -- single actions --------------------------------------------------------------------

    def _change(self, action: Action, keys: Sequence[str], version: str | None
                ) -> TicketChange:
        return TicketChange(ticket_id=action.ticket_id, status=action.status,
                            fields={**action.fields, **audit_fields(action, self.run_id, keys)},
                            expected_version=version)

    def _write(self, action: Action, change: TicketChange) -> None:
        if action.comment and action.kind != CREATE:
            self.desk.comment(action.ticket_id, action.comment, change=change)
        else:
            self.desk.update(change)

    def _commit(self, action: Action) -> None:
        """The desk write that makes ``action`` happen. A create has none (creating is its
        first follow-up, idempotent by key; the note on the incident records its key last):
        it only checks that no earlier attempt got as far as that note."""
        if action.kind == CREATE:
            if action.key in self.desk.get(action.ticket_id).automation_keys:
                raise AlreadyDone()
            return
        if action.expected_version is not None:
            self._write(action, self._change(action, self.keys.get(action.ticket_id, ()),
                                             action.expected_version))
            return
        for _ in range(FRESH_ATTEMPTS):
            ticket = self.desk.get(action.ticket_id)
            if action.key in ticket.automation_keys:
                raise AlreadyDone()
            try:
                self._write(action, self._change(action, ticket.automation_keys,
                                                 ticket.version))
                return
            except StaleTicket:
                log.info("#%s changed while recording %s; reading it again",
                         action.ticket_id, action.key)
        raise StaleTicket(f"could not record {action.key} on #{action.ticket_id}: it keeps "
                          "changing", ticket_id=action.ticket_id)

    def _single(self, action: Action) -> ActionOutcome:
        self._commit(action)
        keys = self.keys.get(action.ticket_id, ())
        if action.kind not in FINAL_KINDS and action.kind != CREATE:
            self.keys[action.ticket_id] = (*keys, action.key)
        entry = self.pending.get(action.key)
        return self._follow(action, entry) if entry is not None else \
            self._outcome(action, "done")

    def _break_link(self, action: Action) -> ActionOutcome:
        assert action.unlink_from is not None
        self.desk.unlink_duplicate(action.ticket_id, action.unlink_from)
        if action.comment:
            self.desk.comment(action.ticket_id, action.comment)
        return self._outcome(action, "done", f"link to #{action.unlink_from} removed")

    def _outcome(self, action: Action, outcome: str, message: str = "", *,
                 created_id: str | None = None, undelivered: Iterable[str] = (),
                 retry: bool = False) -> ActionOutcome:
        return ActionOutcome(action.key, action.kind, action.ticket_id, action.step,
                             action.rule, outcome, message, created_id, list(undelivered),
                             retry, at=self.clock().isoformat())

