"""Plain ticket builders for the pure-policy tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from incident_ops.config import load_contacts, load_vocabulary
from incident_ops.model import RESOLVED, Ticket

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
VOCAB = load_vocabulary()
CONTACTS = load_contacts()


def complete(ticket_id: str = "1", **over: Any) -> Ticket:
    """A resolved alarm whose record is complete (passes every 100.6 rule)."""
    created = NOW - timedelta(hours=5)
    base: dict[str, Any] = dict(
        id=ticket_id, subject=f"告警 {ticket_id}", status=RESOLVED, priority="high",
        created=created, updated=NOW - timedelta(minutes=30), source="monitoring",
        category="alarm", system="billing", impact="medium", resolver_role="l2",
        solution="重启计费进程", close_code="solved", config_item="bill-app-01",
        completed_at=NOW - timedelta(hours=1), resolved_at=NOW - timedelta(minutes=30),
        handler="liu.yang", handler_tier="l2", requester="user@example.cn",
        version=f"v-{ticket_id}",
    )
    base.update(over)
    return Ticket(**base)
