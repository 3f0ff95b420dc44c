"""The incremental-read watermark shared by the pipelines that read "what changed since".

Stored by the Airflow layer (a Variable per pipeline); computed here: past every ticket the
run read, never past one whose action failed or found it changed, so that ticket is read
again by the next run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from incident_ops.apply import ActionOutcome


def next_watermark(previous: datetime | None, updated: Mapping[str, datetime],
                   outcomes: Sequence[ActionOutcome]) -> datetime | None:
    """The point the next run reads from: past every processed ticket, never past a failure.

    A ticket whose action failed or found it changed holds the watermark at its own
    update time, so the next run reads it again.
    """
    if not updated:
        return previous
    held = [updated[o.ticket_id] for o in outcomes
            if o.outcome in ("failed", "stale") and o.ticket_id in updated]
    if held:
        return min(held)
    mark = max(updated.values())
    return mark if previous is None else max(previous, mark)
