"""100.8 Monitoring incident handling: the SLA escalation ladder, as pure functions.

For every open ticket the ladder's rungs fall due at fixed times computed from its creation,
its current priority and impact (a re-prioritised ticket is measured against its new
target). A due rung that the ticket does not yet carry fires: its people are told and the
rung is written on the ticket, so it never fires again. The ticket also carries the time
its next rung falls due (``escalation_due``), so the monitor only has to search for tickets
that fell due or changed, never scan the whole queue.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from incident_ops.model import Ticket, id_order
from incident_ops.policy.calendar import Calendar
from incident_ops.policy.plan import ESCALATE, Action, Finding, Notice, Plan, action_key
from incident_ops.reference import ConfigError, Contacts, Vocabulary


@dataclass(frozen=True)
class Rung:
    name: str
    step: str
    notify: str  # handler | incident_manager | experts | management
    at: float | None = None  # fraction of the resolve target
    after_breach: float | None = None  # hours after the breach
    major_impact: bool = False  # a major-impact ticket reaches this rung at breach


@dataclass(frozen=True)
class SlaPolicy:
    resolve_hours: dict[str, float]
    respond_hours: dict[str, float]
    impact_resolve_hours: dict[str, float]
    calendar: Calendar | None
    calendar_priorities: frozenset[str]
    ladder: tuple[Rung, ...]
    timezone: str = "Asia/Shanghai"

    @classmethod
    def from_dict(cls, data: dict[str, Any], tz: str = "Asia/Shanghai") -> SlaPolicy:
        """From ``sla.yaml``; ``tz`` is the deployment's zone (``config.timezone()``), where
        the calendar's working days and hours are."""
        try:
            targets = data["targets"]
            rungs = tuple(Rung(name=r["rung"], step=str(r.get("step", "100.8")),
                               notify=r["notify"], at=r.get("at"),
                               after_breach=r.get("after_breach"),
                               major_impact=bool(r.get("major_impact", False)))
                          for r in data["ladder"])
            for rung in rungs:
                if rung.at is None and rung.after_breach is None:
                    raise ValueError(f"ladder rung '{rung.name}' needs 'at' or 'after_breach'")
            cal = data.get("calendar")
            return cls(
                resolve_hours={p: float(t["resolve"]) for p, t in targets.items()},
                respond_hours={p: float(t.get("respond", t["resolve"])) for p, t in
                               targets.items()},
                impact_resolve_hours={i: float(t["resolve"]) for i, t in
                                      (data.get("impact_targets") or {}).items()},
                calendar=Calendar.from_dict(cal, tz) if cal else None,
                calendar_priorities=frozenset((cal or {}).get("applies_to", ())),
                ladder=rungs, timezone=tz)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"sla.yaml: bad or missing value: {exc}") from exc

    def target_hours(self, ticket: Ticket) -> float | None:
        hours = self.resolve_hours.get(ticket.priority)
        by_impact = self.impact_resolve_hours.get(ticket.impact or "")
        if hours is None:
            return by_impact
        return min(hours, by_impact) if by_impact is not None else hours

    def coverage_warnings(self, now: datetime) -> list[str]:
        """Why business-hour due times may be wrong now (``Calendar.coverage_warnings``)."""
        if self.calendar is None or not self.calendar_priorities:
            return []
        return self.calendar.coverage_warnings(now)

    def add(self, ticket: Ticket, start: datetime, hours: float) -> datetime:
        if self.calendar is not None and ticket.priority in self.calendar_priorities:
            return self.calendar.add(start, hours)
        return start + timedelta(hours=hours)


def due_times(ticket: Ticket, policy: SlaPolicy) -> dict[str, datetime]:
    """When each rung falls due for this ticket, as it stands (priority, impact) now."""
    target = policy.target_hours(ticket)
    if target is None:
        return {}
    breach = policy.add(ticket, ticket.created, target)
    due: dict[str, datetime] = {}
    for rung in policy.ladder:
        if rung.major_impact and ticket.impact == "major":
            due[rung.name] = breach
        elif rung.at is not None:
            due[rung.name] = breach if rung.at == 1 else policy.add(ticket, ticket.created,
                                                                    target * rung.at)
        elif rung.after_breach is not None:
            due[rung.name] = policy.add(ticket, breach, rung.after_breach)
    # The ladder is climbed in order: reaching a rung early (major impact) passes the ones
    # below it too, so no rung is ever due after a higher one.
    names = [r.name for r in policy.ladder]
    for lower, higher in reversed(list(zip(names, names[1:], strict=False))):
        due[lower] = min(due[lower], due[higher])
    return due


def decide_escalation(tickets: Iterable[Ticket], policy: SlaPolicy, vocab: Vocabulary,
                      contacts: Contacts, now: datetime, run_id: str) -> Plan:
    """Fire every due rung not yet fired; keep each ticket's next due time up to date."""
    plan = Plan(pipeline="incident_queue_monitor", run_id=run_id,
                warnings=policy.coverage_warnings(now))
    run = _Run(vocab, contacts, run_id)
    for ticket in sorted(tickets, key=lambda t: id_order(t.id)):
        if not ticket.is_open:
            continue  # a resolved ticket stops climbing
        if not vocab.knows("priorities", ticket.priority) or policy.target_hours(ticket) is None:
            plan.findings.append(Finding(ticket.id, "priority",
                                          f"no SLA target for priority '{ticket.priority}'"))
            continue
        action = _ladder_action(ticket, policy, run, now, plan)
        if action is not None:
            plan.actions.append(action)
    return plan


class _Run:
    """What a run looks up once and reuses for every ticket: labels and recipients.

    A queue holds 100,000 tickets but a handful of systems, people and codes.
    """

    def __init__(self, vocab: Vocabulary, contacts: Contacts, run_id: str) -> None:
        self.vocab = vocab
        self.contacts = contacts
        self.run_id = run_id
        self._labels: dict[tuple[str, str | None], str] = {}
        self._recipients: dict[tuple[Any, ...], tuple[tuple[str, ...], str]] = {}

    def both(self, section: str, code: str | None) -> str:
        key = (section, code)
        label = self._labels.get(key)
        if label is None:
            label = self._labels[key] = self.vocab.both(section, code)
        return label

    def recipients(self, rung: Rung, ticket: Ticket) -> tuple[tuple[str, ...], str]:
        key = (rung.notify, ticket.handler, ticket.handler_email, ticket.system)
        found = self._recipients.get(key)
        if found is None:
            people, missing = _recipients(rung, ticket, self.contacts)
            found = self._recipients[key] = (tuple(people), missing)
        return found


def _ladder_action(ticket: Ticket, policy: SlaPolicy, run: _Run, now: datetime,
                   plan: Plan) -> Action | None:
    due = due_times(ticket, policy)
    fired = ticket.escalation
    firing = [r for r in policy.ladder if r.name not in fired and due[r.name] <= now]
    pending = [due[r.name] for r in policy.ladder if r.name not in fired and due[r.name] > now]
    next_due = min(pending) if pending else None
    if not firing:
        if next_due == ticket.escalation_due:
            return None  # nothing due, and the ticket already says when to look again
        return Action(kind=ESCALATE, ticket_id=ticket.id, step="100.8.1", rule="sla.schedule",
                      reason=f"next rung due {_fmt(next_due)}",
                      key=action_key("due", ticket.id, next_due),
                      fields={"escalation_due": next_due}, expected_version=ticket.version)
    when = {r.name: _fmt(due[r.name]) for r in firing}
    base = _context(ticket, due, run)
    notices = []
    for rung in firing:
        recipients, missing = run.recipients(rung, ticket)
        if missing:
            plan.findings.append(Finding(ticket.id, "system" if rung.notify in (
                "experts", "management") else "handler", missing))
        if recipients:
            context = {**base, "rung": rung.name, "step": rung.step, "due": when[rung.name],
                       "run_id": run.run_id}
            notices.append(Notice("escalation", recipients, context))
    top = firing[-1]
    return Action(
        kind=ESCALATE, ticket_id=ticket.id, step=top.step, rule=f"sla.{top.name}",
        reason="rungs due: " + ", ".join(f"{r.name} ({when[r.name]})" for r in firing),
        key=action_key("escalate", ticket.id, *[r.name for r in firing]),
        fields={"escalation": (*fired, *[r.name for r in firing]), "escalation_due": next_due},
        notices=tuple(notices), expected_version=ticket.version)


def _recipients(rung: Rung, ticket: Ticket, contacts: Contacts) -> tuple[list[str], str]:
    if rung.notify == "handler":
        person = contacts.by_desk_user(ticket.handler)
        address = ticket.handler_email or (person.email if person else None) or (
            f"desk-user:{ticket.handler}" if ticket.handler else None)
        return ([address] if address else []), ("" if address else "no handler to notify")
    if rung.notify == "incident_manager":
        people = contacts.role("incident_manager")
    elif rung.notify in ("experts", "management"):
        people = contacts.for_system(ticket.system, rung.notify) or (
            contacts.role("management") if rung.notify == "management" else [])
        if not people:
            return [], f"no {rung.notify} configured for system '{ticket.system}'"
    else:
        people = contacts.role(rung.notify)
    return [p.email for p in people if p.email], ""


def _context(ticket: Ticket, due: dict[str, datetime], run: _Run) -> dict[str, Any]:
    """The message context every rung of ``ticket`` shares (the rung adds its own part)."""
    return {
        "id": ticket.id, "subject": ticket.subject,
        "priority": run.both("priorities", ticket.priority),
        "impact": run.both("impacts", ticket.impact),
        "system": run.both("systems", ticket.system),
        "handler": ticket.handler or "—", "status": run.both("statuses", ticket.status),
        "created": _fmt(ticket.created), "breach": _fmt(due.get("breached")),
    }


def _fmt(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "—"
