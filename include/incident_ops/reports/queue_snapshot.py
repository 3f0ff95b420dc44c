"""The incident manager's queue snapshot (100.8.1): open tickets at a glance, as HTML.

Pure grouping over canonical tickets (no pandas needed for a queue of a few thousand):
counts by priority, system, tier and age; the breached and at-risk lists from the SLA
ladder's own due times, so the page and the escalations never disagree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from incident_ops.model import Ticket, id_order
from incident_ops.notify.compose import environment
from incident_ops.policy.escalation import SlaPolicy, due_times
from incident_ops.reference import Vocabulary

AGE_BUCKETS = ((timedelta(hours=4), "< 4h"), (timedelta(days=1), "4h–1d"),
               (timedelta(days=3), "1–3d"), (timedelta(days=7), "3–7d"))


@dataclass
class Snapshot:
    taken: datetime
    total: int = 0
    by_priority: dict[str, int] = field(default_factory=dict)
    by_system: dict[str, int] = field(default_factory=dict)
    by_tier: dict[str, int] = field(default_factory=dict)
    by_age: dict[str, int] = field(default_factory=dict)
    breached: list[dict[str, Any]] = field(default_factory=list)
    at_risk: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # the SLA calendar's gaps


def age_bucket(age: timedelta) -> str:
    for limit, label in AGE_BUCKETS:
        if age < limit:
            return label
    return "> 7d"


def take_snapshot(tickets: Iterable[Ticket], policy: SlaPolicy, vocab: Vocabulary,
                  now: datetime) -> Snapshot:
    snap = Snapshot(taken=now, warnings=policy.coverage_warnings(now))
    priority, system, tier, age = Counter[str](), Counter[str](), Counter[str](), Counter[str]()
    for ticket in sorted((t for t in tickets if t.is_open), key=lambda t: id_order(t.id)):
        snap.total += 1
        priority[vocab.both("priorities", ticket.priority)] += 1
        system[vocab.both("systems", ticket.system)] += 1
        tier[vocab.both("tiers", ticket.handler_tier)] += 1
        age[age_bucket(now - ticket.created)] += 1
        due = due_times(ticket, policy)
        row = {"id": ticket.id, "subject": ticket.subject,
               "priority": vocab.both("priorities", ticket.priority),
               "system": vocab.both("systems", ticket.system), "handler": ticket.handler or "—",
               "created": f"{ticket.created:%Y-%m-%d %H:%M}",
               "target": f"{due['breached']:%Y-%m-%d %H:%M}" if "breached" in due else "—",
               "escalation": ", ".join(ticket.escalation) or "—"}
        if due.get("breached") and due["breached"] <= now:
            snap.breached.append(row)
        elif due.get("at-risk") and due["at-risk"] <= now:
            snap.at_risk.append(row)
    order = vocab.codes("priorities")
    snap.by_priority = dict(sorted(priority.items(), key=lambda kv: _rank(kv[0], order, vocab)))
    snap.by_system = dict(system.most_common())
    snap.by_tier = dict(sorted(tier.items()))
    labels = [label for _, label in AGE_BUCKETS] + ["> 7d"]
    snap.by_age = {label: age[label] for label in labels if age[label]}
    return snap


def _rank(label: str, order: list[str], vocab: Vocabulary) -> int:
    for index, code in enumerate(order):
        if vocab.both("priorities", code) == label:
            return index
    return len(order)


def render_snapshot(snap: Snapshot, run_id: str) -> tuple[str, str]:
    """(subject, html) of the snapshot page, also used as the e-mail body."""
    tmpl = environment().get_template("reports/queue_snapshot.html.j2")
    subject = (f"事件队列快照 {snap.taken:%Y-%m-%d %H:%M} UTC：{snap.total} 未关闭，"
               f"{len(snap.breached)} 超时 / Queue snapshot: {snap.total} open, "
               f"{len(snap.breached)} breached")
    return subject, tmpl.render(s=snap, subject=subject, run_id=run_id)
