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
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, cast

from incident_ops.desk.port import (
    BadQuery,
    DeskAuthError,
    DeskError,
    RejectedChange,
    ServiceDesk,
    StaleTicket,
    TicketNotFound,
    TicketQuery,
)
from incident_ops.engine.lease import Fenced, Lease, LeaseBusy, LeaseLost
from incident_ops.engine.outbox import MemoryOutbox, Outbox, Pending
from incident_ops.model import Ticket, TicketChange
from incident_ops.notify.compose import render_email, render_sms
from incident_ops.notify.messages import Attachment, Email, Sms
from incident_ops.policy.plan import (
    BREAK_LINK,
    CASCADE_CLOSE,
    CLOSE,
    CREATE,
    REOPEN,
    Action,
    Notice,
    Plan,
)

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


class Notifier(Protocol):
    def send_email(self, email: Email) -> Any: ...

    def send_sms(self, sms: Sms) -> Any: ...


@dataclass
class ActionOutcome:
    key: str
    kind: str
    ticket_id: str
    step: str
    rule: str
    # done | skipped | stale | failed | waiting | deferred | undelivered | dropped
    outcome: str
    message: str = ""
    created_id: str | None = None
    undelivered: list[str] = field(default_factory=list)  # messages still owed
    # A failure another attempt may cure (the desk down, a timeout, a follow-up still owed);
    # a change the desk refused, a ticket gone or a message refused for good is not.
    retry: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Applied:
    outcomes: list[ActionOutcome]  # one per action of the plan that was considered
    replayed: list[ActionOutcome] = field(default_factory=list)  # earlier attempts' debts

    @property
    def undelivered(self) -> list[str]:
        return list(dict.fromkeys(m for o in [*self.replayed, *self.outcomes]
                                  for m in o.undelivered))

    @property
    def retry_failures(self) -> list[ActionOutcome]:
        """Failures another attempt may cure: apply fails so Airflow tries again."""
        return [o for o in [*self.replayed, *self.outcomes]
                if o.outcome == "failed" and o.retry]

    @property
    def deferred(self) -> bool:
        """Nothing was applied: another run held the lease (or it was lost at the start)."""
        return bool(self.outcomes) and all(o.outcome == "deferred" for o in self.outcomes)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for o in self.outcomes:
            counts[o.outcome] = counts.get(o.outcome, 0) + 1
        return counts


def audit_fields(action: Action, run_id: str, keys: Sequence[str]) -> dict[str, Any]:
    """The fields every automated write carries: the rule, the run and the key.

    A close is final (no pipeline reads a closed ticket again and no one can reopen it), so
    its key is not written: that halves the custom-field changes of a bulk close, the
    pipeline's biggest write.
    """
    audit: dict[str, Any] = {"automation": f"{action.step} {action.rule} · run {run_id}"}
    if action.kind not in FINAL_KINDS:
        kept = [k for k in keys if k != action.key][-(KEYS_KEPT - 1):]
        audit["automation_keys"] = (*kept, action.key)
    return audit


def effects_of(action: Action) -> list[tuple[str, Any]]:
    """What follows the commit of ``action``, in order: (kind, detail)."""
    effects: list[tuple[str, Any]] = []
    if action.create is not None:
        effects.append(("create", None))
    if action.kind == REOPEN and action.create is not None:
        effects += [("reference", target) for target in action.create.refers_to]
        effects += [("move", dup) for dup in action.move_duplicates]
    effects += [("attach", i) for i in range(len(action.attachments))]
    if action.kind == CREATE and action.comment:
        effects.append(("note", None))
    effects += [("message", i) for i in range(len(action.notices))]
    return effects


def _bulkable(action: Action) -> bool:
    """Plain conditional field/status writes: nothing follows them, no comment."""
    return (action.kind not in (BREAK_LINK, CREATE) and not action.notices
            and not action.comment and action.create is None and not action.attachments
            and action.expected_version is not None)


class _AlreadyDone(Exception):
    """A fresh read found the action's key on the ticket."""


class Applier:
    """Applies plans of one scope (a pipeline, an emergency).

    ``known_keys`` (per ``apply``) holds, per ticket, the idempotency keys it carried when
    the plan was made: the keys field is rewritten whole, so it must start from what is there.
    """

    def __init__(self, desk: ServiceDesk, notifier: Notifier, run_id: str, *,
                 outbox: Outbox | None = None, lease: Lease | None = None,
                 bulk_size: int = 100,
                 resolve_address: Callable[[str], str | None] | None = None,
                 render_context: Callable[[Notice], Mapping[str, Any]] | None = None,
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
        except _AlreadyDone:
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
                raise _AlreadyDone()
            return
        if action.expected_version is not None:
            self._write(action, self._change(action, self.keys.get(action.ticket_id, ()),
                                             action.expected_version))
            return
        for _ in range(FRESH_ATTEMPTS):
            ticket = self.desk.get(action.ticket_id)
            if action.key in ticket.automation_keys:
                raise _AlreadyDone()
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

    # -- what follows a commit ---------------------------------------------------------------

    def _follow(self, action: Action, entry: Pending) -> ActionOutcome:
        """Carry out the follow-ups not yet struck off; strike off each that happened."""
        undelivered: list[str] = []
        problem = ""
        for index, (kind, detail) in enumerate(effects_of(action)):
            if index in entry.done:
                continue
            self._keep()
            try:
                self._effect(action, kind, detail, entry)
            except DeskAuthError:
                raise
            except Exception as exc:  # noqa: BLE001 - recorded, owed, reported
                text = f"{type(exc).__name__}: {exc}"
                if kind == "message":
                    if getattr(exc, "transient", True) and not isinstance(exc, ValueError):
                        undelivered.append(f"{self._describe(action, detail)}: {text}")
                        continue
                    # Refused for good (no address, a rejected number): never retried.
                    problem = f"{self._describe(action, detail)} refused: {text}"
                    entry.done.append(index)
                    continue
                problem = f"{kind} failed: {text}"
                break  # what follows may need it (a message naming the copy's id)
            entry.done.append(index)
        entry.attempts += 1
        entry.last_error = problem or ("; ".join(undelivered))
        finished = len(entry.done) == len(effects_of(action))
        if finished:
            self.pending.pop(action.key, None)
        self.outbox.save(self.pending)
        created = entry.results.get("created_id")
        if problem and not finished:
            return self._outcome(action, "failed", f"{problem}; the rest is owed and finished "
                                 "by the next attempt or run", created_id=created, retry=True)
        if undelivered:
            return self._outcome(action, "undelivered", "; ".join(undelivered),
                                 created_id=created, undelivered=undelivered)
        message = problem or (f"created #{created}" if created else "")
        if action.kind == REOPEN and created:
            message = f"reopened as #{created}"
        return self._outcome(action, "failed" if problem else "done", message,
                             created_id=created)

    def _effect(self, action: Action, kind: str, detail: Any, entry: Pending) -> None:
        results = entry.results
        if kind == "create":
            assert action.create is not None
            draft = action.create
            if action.kind == REOPEN:
                # Unlinked: the link is written after (a link written with the create would
                # change the old ticket while it is being closed).
                draft = replace(draft, refers_to=())
            results["created_id"] = self.desk.create(draft)
        elif kind == "reference":
            self.desk.add_reference(results["created_id"], str(detail))
        elif kind == "move":
            self.desk.link_duplicate(str(detail), results["created_id"])
        elif kind == "attach":
            spec = action.attachments[int(detail)]
            target = results.get("created_id") or action.ticket_id
            self.desk.attach(target, spec["name"], Path(spec["path"]).read_bytes(),
                             spec.get("mime", "application/octet-stream"),
                             note=spec.get("note", ""))
        elif kind == "note":
            note = replace(action, kind="record", expected_version=None,
                           comment=str(action.comment).replace(
                               "{created_id}", str(results.get("created_id", ""))))
            try:
                self._commit(note)
            except _AlreadyDone:
                pass
        elif kind == "message":
            notice = action.notices[int(detail)]
            extra = {"new_id": results["created_id"]} if "created_id" in results else {}
            self._send(replace(notice, context={**notice.context, **extra}),
                       f"{action.key}/{detail}")
        else:  # pragma: no cover - effects_of makes only the kinds above
            raise ValueError(f"unknown follow-up {kind!r}")

    def _describe(self, action: Action, index: Any) -> str:
        notice = action.notices[int(index)]
        return f"{notice.channel} '{notice.template}' to {', '.join(notice.to)} " \
               f"(#{action.ticket_id}, {action.key}/{index})"

    def _send(self, notice: Notice, key: str) -> None:
        to = tuple(a for a in (self.resolve_address(x) for x in notice.to) if a)
        cc = tuple(a for a in (self.resolve_address(x) for x in notice.cc) if a)
        if not to:
            raise ValueError(f"no address for {notice.to}")
        if self.render_context is not None:
            notice = replace(notice, context={**notice.context, **self.render_context(notice)})
        if notice.channel == "sms":
            self.notifier.send_sms(render_sms(notice.template, to, notice.context, key))
            return
        email = render_email(notice.template, to, notice.context, key, cc)
        if notice.attachments:
            email = replace(email, attachments=tuple(
                Attachment(a["name"], Path(a["path"]).read_bytes(),
                           a.get("mime", "application/octet-stream"))
                for a in notice.attachments))
        self.notifier.send_email(email)

    def _desk_user_address(self, address: str) -> str | None:
        if address.startswith("desk-user:"):
            return self.desk.user_email(address.removeprefix("desk-user:"))
        return address

    # -- debts of earlier attempts and runs ---------------------------------------------------

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

    def _outcome(self, action: Action, outcome: str, message: str = "", *,
                 created_id: str | None = None, undelivered: Iterable[str] = (),
                 retry: bool = False) -> ActionOutcome:
        return ActionOutcome(action.key, action.kind, action.ticket_id, action.step,
                             action.rule, outcome, message, created_id, list(undelivered),
                             retry)


def retryable(error: BaseException) -> bool:
    """Whether trying again may cure a desk failure: not for a change the desk refused, a
    ticket it does not have or a query it cannot run."""
    return not isinstance(error, (RejectedChange, TicketNotFound, BadQuery))
