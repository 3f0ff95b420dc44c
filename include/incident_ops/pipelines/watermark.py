"""The incremental-read watermark shared by the pipelines that read "what changed since".

Stored by the Airflow layer (a Variable per pipeline); computed here. The next run reads
tickets updated at or after the watermark, which is:
- the moment this run's fetch started, less a clock-skew margin: every ticket updated
  before that was visible to this run's search, so a quiet desk gives the next run an empty
  search instead of re-reading the last tickets seen (their second comes back forever
  when the watermark is the newest update read);
- held back to the update time of any ticket whose action failed or found it changed, so
  that ticket is read again;
- never moved backwards otherwise.
Our own writes happen after the fetch started, so the next run reads those tickets once
more and finds nothing to do: the price of not keeping private state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from incident_ops.apply import ActionOutcome

# How far the desk's clock may lag ours: margin taken off the fetch's start time.
DEFAULT_SKEW = timedelta(seconds=60)


def next_watermark(previous: datetime | None, fetch_started: datetime,
                   updated: Mapping[str, datetime], outcomes: Sequence[ActionOutcome],
                   skew: timedelta = DEFAULT_SKEW) -> datetime:
    held = [updated[o.ticket_id] for o in outcomes
            if o.outcome in ("failed", "stale") and o.ticket_id in updated]
    if held:
        return min(held)
    mark = fetch_started - skew
    return mark if previous is None else max(previous, mark)
