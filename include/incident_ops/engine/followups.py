"""What follows a desk commit (rule 3 of ``engine.applier``): the copy a reopen creates, its
links, files, the note, the messages; each struck off the outbox entry once it happened.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from incident_ops.artefacts import ArtefactStore
from incident_ops.desk.port import DeskAuthError, ServiceDesk
from incident_ops.engine.outbox import Outbox, Pending
from incident_ops.engine.outcomes import ActionOutcome
from incident_ops.notify.compose import render_email, render_sms
from incident_ops.notify.messages import Attachment, Email, Sms
from incident_ops.policy.plan import CREATE, REOPEN, Action, Notice


class Notifier(Protocol):
    def send_email(self, email: Email) -> Any: ...

    def send_sms(self, sms: Sms) -> Any: ...


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



class AlreadyDone(Exception):
    """A fresh read found the action's key on the ticket."""


class FollowUps:
    """The follow-ups part of ``engine.applier.Applier`` (a mixin: what it uses of the
    applier is declared below)."""

    if TYPE_CHECKING:
        desk: ServiceDesk
        notifier: Notifier
        outbox: Outbox
        pending: dict[str, Pending]
        resolve_address: Callable[[str], str | None]
        render_context: Callable[[Notice], Mapping[str, Any]] | None
        artefacts: ArtefactStore | None

        def _keep(self) -> None: ...

        def _commit(self, action: Action) -> None: ...

        def _outcome(self, action: Action, outcome: str, message: str = "", *,
                     created_id: str | None = None, undelivered: Iterable[str] = (),
                     retry: bool = False) -> ActionOutcome: ...

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
            self.desk.attach(target, spec["name"], self._attachment(spec),
                             spec.get("mime", "application/octet-stream"),
                             note=spec.get("note", ""))
        elif kind == "note":
            note = replace(action, kind="record", expected_version=None,
                           comment=str(action.comment).replace(
                               "{created_id}", str(results.get("created_id", ""))))
            try:
                self._commit(note)
            except AlreadyDone:
                pass
        elif kind == "message":
            notice = action.notices[int(detail)]
            extra = {"new_id": results["created_id"]} if "created_id" in results else {}
            self._send(replace(notice, context={**notice.context, **extra}),
                       f"{action.key}/{detail}")
        else:  # pragma: no cover - effects_of makes only the kinds above
            raise ValueError(f"unknown follow-up {kind!r}")

    def _attachment(self, spec: Mapping[str, str]) -> bytes:
        """An attachment's bytes: from the artefact store (``key``), or a file an older
        plan named by its ``path``."""
        if spec.get("key"):
            if self.artefacts is None:
                raise ValueError(f"attachment {spec['key']}: no artefact store to read it from")
            return self.artefacts.read_bytes(spec["key"])
        return Path(spec["path"]).read_bytes()

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
                Attachment(a["name"], self._attachment(a),
                           a.get("mime", "application/octet-stream"))
                for a in notice.attachments))
        self.notifier.send_email(email)

    def _desk_user_address(self, address: str) -> str | None:
        if address.startswith("desk-user:"):
            return self.desk.user_email(address.removeprefix("desk-user:"))
        return address
