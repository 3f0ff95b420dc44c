"""100.6-100.7: deciding what happens to resolved tickets.

``decide_closure`` is pure: resolved tickets, the tickets linked to them as duplicates or
masters, the policy and ``now`` go in; a ``Plan`` comes out. The same input gives the same
plan whatever order the tickets arrive in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from incident_ops.model import (
    CLOSED,
    CONFIRMATION_CONFIRMED,
    CONFIRMATION_PENDING,
    CONFIRMATION_REJECTED,
    INCIDENT_QUEUE,
    UNSUCCESSFUL,
    Ticket,
    TicketDraft,
    id_order,
)
from incident_ops.policy import rules
from incident_ops.policy.completeness import Gap, check_resolution
from incident_ops.policy.duplicates import DuplicateGraph
from incident_ops.policy.plan import (
    ASK_CONFIRMATION,
    BOUNCE,
    BREAK_LINK,
    CASCADE_CLOSE,
    CLOSE,
    REMIND_HELPDESK,
    REOPEN,
    Action,
    Finding,
    Notice,
    Plan,
    action_key,
)
from incident_ops.reference import ConfigError, Contacts, Vocabulary


@dataclass(frozen=True)
class ClosurePolicy:
    completeness: dict[str, bool]
    remind_after: timedelta = timedelta(hours=24)
    close_without_answer: bool = False
    close_without_answer_after: timedelta = timedelta(hours=72)
    bulk_size: int = 100
    read_parallelism: int = 2
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClosurePolicy:
        try:
            conf = data.get("confirmation") or {}
            rules = data.get("completeness") or {}
            if not all(isinstance(v, bool) for v in rules.values()):
                raise ConfigError("closure.yaml: completeness rules must be true or false")
            return cls(
                completeness=dict(rules),
                remind_after=timedelta(hours=float(conf.get("remind_helpdesk_after_hours", 24))),
                close_without_answer=bool(conf.get("close_without_answer", False)),
                close_without_answer_after=timedelta(
                    hours=float(conf.get("close_without_answer_after_hours", 72))),
                bulk_size=int(data.get("bulk_size", 100)),
                read_parallelism=max(1, int(data.get("read_parallelism", 2))),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"closure.yaml: {exc}") from exc


@dataclass(frozen=True)
class _Context:
    policy: ClosurePolicy
    vocab: Vocabulary
    contacts: Contacts
    now: datetime
    run_id: str


def decide_closure(resolved: Iterable[Ticket], related: Iterable[Ticket], policy: ClosurePolicy,
                   vocab: Vocabulary, contacts: Contacts, now: datetime, run_id: str) -> Plan:
    """The closure plan for ``resolved`` tickets (spec 100.6-100.7).

    ``related`` holds the other tickets of their duplicate families (open or closed
    duplicates, masters that are not resolved), so cascades and waits can be decided.
    """
    ctx = _Context(policy, vocab, contacts, now, run_id)
    candidates = {t.id: t for t in resolved}
    graph = DuplicateGraph([*candidates.values(), *related])
    plan = Plan(pipeline="incident_closure", run_id=run_id)
    plan.findings.extend(graph.findings)
    plan.actions.extend(graph.break_actions())

    handled: set[str] = set()
    for ticket in sorted(candidates.values(), key=_order):
        if graph.master_of(ticket.id) is None:  # a master (or a ticket with no duplicates)
            _decide_master(ticket, graph, ctx, plan, handled)
    for ticket in sorted(candidates.values(), key=_order):
        if ticket.id not in handled and graph.master_of(ticket.id) is not None:
            _decide_duplicate(ticket, graph, ctx, plan, handled)
    for master in sorted(graph.tickets.values(), key=_order):
        if master.id not in candidates and graph.master_of(master.id) is None:
            _follow_closed_master(master, graph, ctx, plan, handled)
    relinked = graph.relinked()
    if relinked:  # a loop is broken and its family decided in one run (policy.duplicates)
        plan.actions = [replace(a, expected_version=None)
                        if a.ticket_id in relinked and a.kind != BREAK_LINK else a
                        for a in plan.actions]
    return plan


def _order(ticket: Ticket) -> tuple[int, str]:
    return id_order(ticket.id)


def _decide_master(ticket: Ticket, graph: DuplicateGraph, ctx: _Context, plan: Plan,
                   handled: set[str]) -> None:
    handled.add(ticket.id)
    if ticket.partial:  # read without its record: nothing to judge it on (fetch prevents it)
        plan.waiting[ticket.id] = "read without its custom fields; decided once read in full"
        _wait_family(ticket, graph, plan, handled, "its master was read without its record")
        return
    gaps = check_resolution(ticket, ctx.vocab, ctx.policy.completeness, ctx.now)
    if gaps:
        _add(plan, ticket, _bounce(ticket, gaps, ctx))
        _wait_family(ticket, graph, plan, handled, "its master's resolution record is incomplete")
        return
    if ticket.source is not None and not ctx.vocab.knows("sources", ticket.source):
        plan.findings.append(Finding(ticket.id, "source",
                                     f"unknown source '{ticket.source}', routed as user-raised",
                                     severity="warning"))
    route = _route(ticket, ctx, plan)
    if route.step == "100.7.4":
        _close_family(ticket, "100.7.4", rules.CLOSE_HANDLED_BY_SUPPORT, route.why
                      + ": closed by its resolver with its close code", graph, ctx, plan,
                      handled)
    elif route.step == "100.7.1":
        _close_family(ticket, "100.7.1", rules.CLOSE_AUTO_SOURCE, route.why
                      + ": the help desk closes it without asking the requester", graph, ctx,
                      plan, handled)
    else:
        _decide_confirmation(ticket, graph, ctx, plan, handled, route.why)


@dataclass(frozen=True)
class _Route:
    step: str  # 100.7.4 (L1/L2 close it), 100.7.1 (the help desk closes it), 100.7.2 (ask)
    why: str  # what happened to the ticket, for the plan's reason


def _route(ticket: Ticket, ctx: _Context, plan: Plan) -> _Route:
    """Who closes a resolved ticket, and how (spec 100.6 end, 100.7).

    L1/L2 close what they resolved themselves unless the help desk dispatched it to them
    (100.7.4). Everything else is the help desk's: a ticket it dispatched comes back to it,
    and one it resolved itself is already there. The help desk closes monitoring alarms and
    auto-transfers without asking (100.7.1) and asks the requester about all others (100.7.2).
    """
    vocab, role = ctx.vocab, ticket.resolver_role
    resolver = vocab.label("resolver_roles", role, "en") if role else "an unrecorded resolver"
    if vocab.attr("resolver_roles", role, "support") and not ticket.dispatched_by_helpdesk:
        return _Route("100.7.4", f"resolved by {resolver}, not dispatched by the help desk")
    if not vocab.knows("resolver_roles", role):
        # Only possible with the 100.6.6 completeness rule switched off: the safe branch is
        # the help desk's, which asks the requester rather than closing unasked.
        plan.findings.append(Finding(
            ticket.id, "resolver_role",
            f"resolver role '{role or ''}' is not known: routed through the help desk",
            severity="warning"))
    if ticket.dispatched_by_helpdesk:
        how = f"dispatched by the help desk, resolved by {resolver} and back with the help desk"
    else:
        how = f"resolved by {resolver}"
    source = vocab.label("sources", ticket.source, "en") if ticket.source else "no source"
    if vocab.attr("sources", ticket.source, "route") == "auto":
        return _Route("100.7.1", f"{source}, {how}")
    return _Route("100.7.2", f"{source}, {how}")


def _decide_confirmation(ticket: Ticket, graph: DuplicateGraph, ctx: _Context, plan: Plan,
                         handled: set[str], why: str) -> None:
    answer = ticket.confirmation or None
    if answer == CONFIRMATION_CONFIRMED:
        _close_family(ticket, "100.7.1", rules.CLOSE_CONFIRMED,
                      f"{why}: the requester confirmed the fix", graph, ctx, plan, handled)
    elif answer == CONFIRMATION_REJECTED:
        _add(plan, ticket, _reopen(ticket, graph, ctx))
        _wait_family(ticket, graph, plan, handled, "moved to the reopened ticket")
    elif answer == CONFIRMATION_PENDING:
        _decide_pending(ticket, graph, ctx, plan, handled)
    elif answer is None:
        if not ticket.requester:
            plan.findings.append(Finding(ticket.id, "requester",
                                         "no requester to ask for confirmation (100.7.2)"))
            plan.waiting[ticket.id] = "no requester to ask"
        else:
            _add(plan, ticket, _ask(ticket, ctx, why))
        _wait_family(ticket, graph, plan, handled, "its master awaits the requester's answer")
    else:
        plan.findings.append(Finding(ticket.id, "confirmation",
                                     f"unknown confirmation value '{answer}'"))
        plan.waiting[ticket.id] = f"unknown confirmation '{answer}'"


def _decide_pending(ticket: Ticket, graph: DuplicateGraph, ctx: _Context, plan: Plan,
                    handled: set[str]) -> None:
    asked = ticket.confirmation_asked_at or ticket.updated
    policy = ctx.policy
    if policy.close_without_answer and ctx.now - asked >= policy.close_without_answer_after:
        _close_family(ticket, "100.7.1", rules.CLOSE_NO_ANSWER,
                      "no answer from the requester in time; the policy closes it", graph,
                      ctx, plan, handled)
        return
    if ctx.now - asked >= policy.remind_after:
        _add(plan, ticket, _remind(ticket, asked, ctx))
    else:
        plan.waiting[ticket.id] = "awaiting the requester's answer"
    _wait_family(ticket, graph, plan, handled, "its master awaits the requester's answer")


def _decide_duplicate(ticket: Ticket, graph: DuplicateGraph, ctx: _Context, plan: Plan,
                      handled: set[str]) -> None:
    """A resolved duplicate whose master is not being closed in this plan."""
    handled.add(ticket.id)
    root = graph.root_of(ticket.id)
    master = graph.tickets.get(root)
    if master is not None and master.status == CLOSED and master.close_code != UNSUCCESSFUL:
        # A duplicate linked after its master closed: it follows the master's close code,
        # under the step that closed the master (100.7.1 or 100.7.4, as its stamp says).
        _add(plan, ticket, _cascade(ticket, master, _closing_step(master)))
    else:
        plan.waiting[ticket.id] = f"waits for its master #{root}"


def _follow_closed_master(master: Ticket, graph: DuplicateGraph, ctx: _Context, plan: Plan,
                          handled: set[str]) -> None:
    """100.7.1 for duplicates still open under a master closed earlier (linked after it
    closed, or left open when a run stopped between the master's close and theirs): they
    close with the master's code. An unsuccessful master's duplicates follow its reopened
    copy instead (100.7.3)."""
    if master.status != CLOSED or master.close_code == UNSUCCESSFUL or master.partial:
        return
    for dup in graph.descendants(master.id):
        if dup.id not in handled and dup.status != CLOSED:
            handled.add(dup.id)
            _add(plan, dup, _cascade(dup, master, _closing_step(master)))


def _close_family(master: Ticket, step: str, rule: str, reason: str, graph: DuplicateGraph,
                  ctx: _Context, plan: Plan, handled: set[str]) -> None:
    _add(plan, master, Action(
        kind=CLOSE, ticket_id=master.id, step=step, rule=rule, reason=reason,
        key=action_key("close", master.id), status=CLOSED,
        fields={"close_code": master.close_code}, expected_version=master.version))
    for dup in graph.descendants(master.id):
        handled.add(dup.id)
        if dup.status != CLOSED:
            _add(plan, dup, _cascade(dup, master, step))


def _closing_step(master: Ticket) -> str:
    """The 100.7 step a closed master was closed under, from its automation stamp."""
    return "100.7.4" if rules.stamp_step(master.automation) == "100.7.4" else "100.7.1"


def _cascade(dup: Ticket, master: Ticket, step: str) -> Action:
    # 100.7.1 and 100.7.4 both close the duplicates with the master: the duplicate is
    # recorded under its master's step, so the plan says who closed the family.
    return Action(
        kind=CASCADE_CLOSE, ticket_id=dup.id, step=step, rule=rules.CLOSE_DUPLICATE_CASCADE,
        reason=f"duplicate of #{master.id} (closed under {step}): closed with the master's "
               "close code",
        key=action_key("cascade", dup.id, master.id), status=CLOSED,
        fields={"close_code": master.close_code}, expected_version=dup.version,
        master_id=master.id)


def _wait_family(master: Ticket, graph: DuplicateGraph, plan: Plan, handled: set[str],
                 why: str) -> None:
    for dup in graph.descendants(master.id):
        handled.add(dup.id)
        if dup.status != CLOSED:
            plan.waiting[dup.id] = f"{why} (master #{master.id})"


def _add(plan: Plan, ticket: Ticket, action: Action) -> None:
    """Add ``action`` unless the ticket already carries its key (done by an earlier run)."""
    if action.key in ticket.automation_keys:
        plan.waiting.setdefault(ticket.id, f"already done: {action.kind}")
        return
    plan.actions.append(action)


def _bounce(ticket: Ticket, gaps: list[Gap], ctx: _Context) -> Action:
    role = ticket.resolver_role if ctx.vocab.knows("resolver_roles", ticket.resolver_role) \
        else ticket.handler_tier
    status = ctx.vocab.attr("resolver_roles", role, "status") or \
        ctx.vocab.attr("tiers", role, "status") or "assigned-l1"
    lines = "\n".join(f"- {g.line()}" for g in gaps)
    comment = ("【事件关闭检查 100.6】解决记录不完整，事件已退回处理人补充：\n"
               f"[Closure check 100.6] The resolution record is incomplete; returned to the "
               f"resolver to complete:\n{lines}")
    to = _handler_address(ticket, ctx.contacts)
    notices = (Notice("bounce", (to,), _context(ticket, ctx, missing=[g.line() for g in gaps])),) \
        if to else ()
    return Action(
        kind=BOUNCE, ticket_id=ticket.id, step="100.6", rule=rules.COMPLETENESS,
        reason="incomplete: " + ", ".join(sorted({g.field for g in gaps})),
        key=action_key(rules.BOUNCE_KEY, ticket.id, ticket.resolved_at or ticket.updated,
                       *sorted(g.field for g in gaps)),
        status=status, comment=comment, notices=notices, expected_version=ticket.version)


def _ask(ticket: Ticket, ctx: _Context, why: str) -> Action:
    return Action(
        kind=ASK_CONFIRMATION, ticket_id=ticket.id, step="100.7.2", rule=rules.CONFIRM_ASK,
        reason=f"{why}: the help desk asks the requester whether it is fixed",
        key=action_key("ask", ticket.id, ticket.resolved_at or ticket.updated),
        fields={"confirmation": CONFIRMATION_PENDING, "confirmation_asked_at": ctx.now},
        notices=(Notice("confirmation_request", (str(ticket.requester),),
                        _context(ticket, ctx, asked_at=ctx.now.isoformat())),),
        expected_version=ticket.version)


def _remind(ticket: Ticket, asked: datetime, ctx: _Context) -> Action:
    helpdesk = tuple(p.email for p in ctx.contacts.role("helpdesk") if p.email)
    return Action(
        kind=REMIND_HELPDESK, ticket_id=ticket.id, step="100.7.2", rule=rules.CONFIRM_REMIND,
        reason=f"no answer from the requester since {asked:%Y-%m-%d %H:%M} UTC",
        key=action_key("remind", ticket.id, asked),
        notices=(Notice("confirmation_reminder", helpdesk,
                        _context(ticket, ctx, asked=f"{asked:%Y-%m-%d %H:%M} UTC")),),
        expected_version=ticket.version)


def _reopen(ticket: Ticket, graph: DuplicateGraph, ctx: _Context) -> Action:
    tier = ticket.handler_tier if ctx.vocab.knows("tiers", ticket.handler_tier) else "l1"
    status = str(ctx.vocab.attr("tiers", tier, "status", "assigned-l1"))
    key = action_key(rules.REOPEN_KEY, ticket.id)
    draft = TicketDraft(
        queue=ticket.queue or INCIDENT_QUEUE,
        subject=f"[重开 Reopened #{ticket.id}] {ticket.subject}",
        description=(f"由事件 #{ticket.id} 重开：请求人确认问题未解决 (100.7.3)。\n"
                     f"Reopened from #{ticket.id}: the requester says it is not fixed.\n\n"
                     f"原描述 / Original description:\n{ticket.description}\n\n"
                     f"原解决方案 / Previous solution:\n{ticket.solution or '—'}"),
        idempotency_key=key, status=status, priority=ticket.priority, owner=ticket.handler,
        requester=ticket.requester,
        fields={"source": ticket.source, "category": ticket.category, "system": ticket.system,
                "impact": ticket.impact, "dispatched_by_helpdesk": True, "handler_tier": tier,
                "config_item": ticket.config_item},
        refers_to=(ticket.id,))
    to = tuple(a for a in [_handler_address(ticket, ctx.contacts)] if a)
    helpdesk = tuple(p.email for p in ctx.contacts.role("helpdesk") if p.email)
    moved = [d.id for d in graph.descendants(ticket.id) if d.status != CLOSED]
    return Action(
        kind=REOPEN, ticket_id=ticket.id, step="100.7.3", rule=rules.CONFIRM_REJECTED,
        reason="the requester says it is not fixed: closed unsuccessful, reopened to "
               f"{ticket.handler or 'the original handler'}",
        key=key, status=CLOSED, fields={"close_code": UNSUCCESSFUL}, create=draft,
        notices=(Notice("reopened", to, _context(ticket, ctx, moved=moved), cc=helpdesk),),
        expected_version=ticket.version, move_duplicates=tuple(moved))


def _handler_address(ticket: Ticket, contacts: Contacts) -> str | None:
    if ticket.handler_email:
        return ticket.handler_email
    person = contacts.by_desk_user(ticket.handler)
    if person and person.email:
        return person.email
    return f"desk-user:{ticket.handler}" if ticket.handler else None


def _context(ticket: Ticket, ctx: _Context, **more: Any) -> dict[str, Any]:
    vocab = ctx.vocab
    return {
        "id": ticket.id, "subject": ticket.subject, "solution": ticket.solution or "",
        "handler": ticket.handler or "", "requester": ticket.requester or "",
        "system": vocab.both("systems", ticket.system),
        "category": vocab.both("categories", ticket.category),
        "priority": vocab.both("priorities", ticket.priority),
        "close_code": vocab.both("close_codes", ticket.close_code),
        "run_id": ctx.run_id, **more,
    }
