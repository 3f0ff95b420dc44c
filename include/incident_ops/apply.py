"""Carrying out a ``Plan`` against the desk and the notifiers, ticket by ticket.

Rules that make a run safe to retry, re-run or overlap:
- every write carries the action's idempotency key into the ticket's ``Automation Keys`` and
  names the rule and DAG run in its ``Automation`` field (a cheap custom-field change that
  shows in the ticket's own history);
- a write is conditional on the version the plan was made from: a ticket a person changed
  since the fetch comes back ``stale`` and is left for the next run;
- for actions that send a message, the conditional desk write comes first and the message
  only goes out when it succeeded, so of two overlapping runs only one sends;
- closes without messages go in bulk requests (the adapter re-checks every version in one
  search just before the bulk write: the window left is that of one request, not a run);
- one ticket's failure is recorded and the batch goes on; only an authentication failure,
  which no other ticket would escape, stops the run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

from incident_ops.desk.port import (
    DeskAuthError,
    DeskError,
    ServiceDesk,
    StaleTicket,
)
from incident_ops.model import TicketChange
from incident_ops.notify.compose import render_email, render_sms
from incident_ops.notify.messages import Email, Sms
from incident_ops.policy.plan import (
    BREAK_LINK,
    CASCADE_CLOSE,
    CLOSE,
    REOPEN,
    Action,
    Notice,
    Plan,
)

log = logging.getLogger(__name__)

KEYS_KEPT = 30  # the newest idempotency keys kept on a ticket; older actions are long final
FINAL_KINDS = (CLOSE, CASCADE_CLOSE)


class Notifier(Protocol):
    def send_email(self, email: Email) -> None: ...

    def send_sms(self, sms: Sms) -> None: ...


@dataclass
class ActionOutcome:
    key: str
    kind: str
    ticket_id: str
    step: str
    rule: str
    outcome: str  # done | skipped | stale | failed
    message: str = ""
    created_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def _bulkable(action: Action) -> bool:
    """Plain field/status writes: no message, comment, new ticket or link to handle."""
    return (action.kind != BREAK_LINK and not action.notices and not action.comment
            and action.create is None)


class Applier:
    """Applies one plan.

    ``known_keys`` holds, per ticket, the idempotency keys it carried when the plan was
    made (the keys field is rewritten whole, so it must start from what is there).
    """

    def __init__(self, desk: ServiceDesk, notifier: Notifier,
                 known_keys: Mapping[str, Sequence[str]],
                 run_id: str, *, bulk_size: int = 100,
                 resolve_address: Callable[[str], str | None] | None = None):
        self.desk = desk
        self.notifier = notifier
        self.run_id = run_id
        self.bulk_size = bulk_size
        self.keys = {tid: tuple(keys) for tid, keys in known_keys.items()}
        self.resolve_address = resolve_address or self._desk_user_address

    def apply(self, plan: Plan) -> list[ActionOutcome]:
        outcomes: dict[str, ActionOutcome] = {}
        touched: set[str] = set()
        singles: list[Action] = []
        bulk: list[Action] = []
        for action in plan.actions:
            if action.key in self.keys.get(action.ticket_id, ()):
                outcomes[action.key] = self._outcome(action, "skipped", "already done")
                continue
            # A ticket gets at most one bulk write per run; anything after it goes singly
            # and will find the ticket's version moved on (stale -> next run).
            if _bulkable(action) and action.ticket_id not in touched:
                bulk.append(action)
            else:
                singles.append(action)
            touched.add(action.ticket_id)
        for action in singles:
            if action.kind == BREAK_LINK:
                outcomes[action.key] = self._guard(action, self._break_link)
        for chunk in _chunks(bulk, self.bulk_size):
            for outcome in self._bulk(chunk):
                outcomes[outcome.key] = outcome
        for action in singles:
            if action.kind != BREAK_LINK:
                outcomes[action.key] = self._guard(action, self._single)
        return [outcomes[a.key] for a in plan.actions if a.key in outcomes]

    # -- execution --------------------------------------------------------------------

    def _guard(self, action: Action, run: Callable[[Action], ActionOutcome]) -> ActionOutcome:
        try:
            return run(action)
        except DeskAuthError:
            raise
        except StaleTicket as exc:
            return self._outcome(action, "stale", f"changed by someone since fetched: {exc}")
        except DeskError as exc:
            log.warning("ticket %s: %s failed: %s", action.ticket_id, action.kind, exc)
            return self._outcome(action, "failed", str(exc))

    def _change(self, action: Action, *, status: str | None = None,
                fields: dict[str, Any] | None = None, conditional: bool = True) -> TicketChange:
        merged = {**(fields if fields is not None else action.fields),
                  **audit_fields(action, self.run_id, self.keys.get(action.ticket_id, ()))}
        return TicketChange(ticket_id=action.ticket_id,
                            status=status if status is not None else action.status,
                            fields=merged,
                            expected_version=action.expected_version if conditional else None)

    def _bulk(self, actions: list[Action]) -> list[ActionOutcome]:
        changes = [self._change(a) for a in actions]
        try:
            results = self.desk.bulk_update(changes)
        except DeskAuthError:
            raise
        except DeskError as exc:
            return [self._outcome(a, "failed", f"bulk update failed: {exc}") for a in actions]
        out = []
        for action, result in zip(actions, results, strict=True):
            message = result.message
            if result.outcome == "stale":
                message = message or "changed by someone since fetched; left for the next run"
            out.append(self._outcome(action, result.outcome, message))
        return out

    def _single(self, action: Action) -> ActionOutcome:
        if action.kind == REOPEN:
            return self._reopen(action)
        self.desk.update(self._change(action))
        if action.comment:
            self.desk.comment(action.ticket_id, action.comment)
        return self._notify(action, action.notices)

    def _break_link(self, action: Action) -> ActionOutcome:
        assert action.unlink_from is not None
        self.desk.unlink_duplicate(action.ticket_id, action.unlink_from)
        if action.comment:
            self.desk.comment(action.ticket_id, action.comment)
        return self._outcome(action, "done", f"link to #{action.unlink_from} removed")

    def _reopen(self, action: Action) -> ActionOutcome:
        assert action.create is not None
        # 1. Create the copy first (idempotent by key): a crash after it leaves the old
        #    ticket resolved and rejected, so the next run comes back here and finds the copy
        #    instead of making a second one. Closing first could lose the reopen for good.
        #    The copy is created unlinked: linking it now would change the old ticket and
        #    make our own conditional close below look like someone else's edit.
        new_id = self.desk.create(replace(action.create, refers_to=()))
        # 2. Close the old ticket, conditional on the version the plan saw.
        closed_now = True
        try:
            self.desk.update(self._change(action))
        except StaleTicket:
            if action.key not in self.desk.get(action.ticket_id).automation_keys:
                raise  # a person changed it: leave it (and the copy) for the next run
            closed_now = False  # an earlier attempt of this action closed it
        # 3. Link, and move the open duplicates to the copy (both idempotent).
        for target in action.create.refers_to:
            self.desk.add_reference(new_id, target)
        moved = [d for n in action.notices for d in n.context.get("moved", [])]
        for dup in moved:
            self.desk.link_duplicate(dup, new_id)  # replaces the link to the old ticket
        if not closed_now:
            return self._outcome(action, "skipped", f"already reopened as #{new_id}")
        notices = tuple(Notice(n.template, n.to, {**n.context, "new_id": new_id}, n.channel, n.cc)
                        for n in action.notices)
        outcome = self._notify(action, notices)
        outcome.created_id = new_id
        if outcome.outcome == "done":
            outcome.message = f"reopened as #{new_id}"
        return outcome

    def _notify(self, action: Action, notices: Iterable[Notice]) -> ActionOutcome:
        failures = []
        for index, notice in enumerate(notices):
            key = f"{action.key}/{index}"
            try:
                self._send(notice, key)
            except Exception as exc:  # noqa: BLE001 - a mail outage must not stop the batch
                failures.append(f"{notice.channel} to {', '.join(notice.to)}: {exc}")
        if failures:
            return self._outcome(action, "failed",
                                 "desk updated, message not sent: " + "; ".join(failures))
        return self._outcome(action, "done")

    def _send(self, notice: Notice, key: str) -> None:
        to = tuple(a for a in (self.resolve_address(x) for x in notice.to) if a)
        cc = tuple(a for a in (self.resolve_address(x) for x in notice.cc) if a)
        if not to:
            raise ValueError(f"no address for {notice.to}")
        if notice.channel == "sms":
            self.notifier.send_sms(render_sms(notice.template, to, notice.context, key))
        else:
            self.notifier.send_email(render_email(notice.template, to, notice.context, key, cc))

    def _desk_user_address(self, address: str) -> str | None:
        if address.startswith("desk-user:"):
            return self.desk.user_email(address.removeprefix("desk-user:"))
        return address

    def _outcome(self, action: Action, outcome: str, message: str = "") -> ActionOutcome:
        if outcome == "done":
            keys = self.keys.get(action.ticket_id, ())
            self.keys[action.ticket_id] = (*keys, action.key)
        return ActionOutcome(action.key, action.kind, action.ticket_id, action.step, action.rule,
                             outcome, message)


def _chunks(items: list[Action], size: int) -> Iterable[list[Action]]:
    for start in range(0, len(items), max(1, size)):
        yield items[start:start + size]
