"""Desk events (issue 28): what the desk publishes when a change matters to 100.5.

The RT scrip (``embedded_desk/scrips``, docs/desk-events.md) publishes one small JSON
message per update to a Redis channel: ``{"ticket": "123", "changes": ["created" |
"priority" | "first_line_cannot_handle"], "at": "2026-05-01T08:00:00Z", "transaction":
"456"}``. Nothing in it is trusted beyond "look at ticket N": the pipeline reads the ticket
from the desk and decides from what it reads. A message that does not name a ticket id is
dropped here, so junk on the channel cannot reach a desk query.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

DEFAULT_CHANNEL = "incident-ops.desk-events"
# More named tickets than this in one run: the run reads the whole urgent queue instead
# (one search), which is what a flood costs anyway.
MAX_NAMED = 200
_TICKET_ID = re.compile(r"^[1-9][0-9]{0,11}$")


def ticket_named(message: Any) -> str | None:
    """The ticket id a desk event names (a dict or its JSON text), or None."""
    if isinstance(message, (str, bytes)):
        try:
            message = json.loads(message)
        except ValueError:
            return None
    if not isinstance(message, dict):
        return None
    ticket = str(message.get("ticket", "")).strip()
    return ticket if _TICKET_ID.match(ticket) else None


def tickets_named(messages: Iterable[Any]) -> list[str]:
    """The distinct ticket ids some messages name, in the order first named."""
    return list(dict.fromkeys(t for t in map(ticket_named, messages) if t))
