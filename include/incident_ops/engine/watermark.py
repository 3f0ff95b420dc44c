"""The incremental-read watermark shared by the pipelines that read "what changed since".

Stored by the Airflow layer (a Variable per pipeline); computed here. The next run reads
tickets updated at or after the watermark, which is:
- the moment this run's fetch started, less a clock-skew margin: every ticket updated
  before that was visible to this run's search, so a quiet desk gives the next run an empty
  search instead of re-reading the last tickets seen (their second comes back forever
  when the watermark is the newest update read);
- held back to the update time of any ticket whose action did not happen (failed, stale,
  waiting for its master, deferred to the next run), so that ticket is read again;
- never moved backwards otherwise.
Our own writes happen after the fetch started, so the next run reads those tickets once
more and finds nothing to do: the price of not keeping private state.

A watermark also remembers the desk's history mark when it was taken (RT: its newest
transaction id). A desk whose mark is now lower is not the desk the watermark was taken on
(re-seeded, rebuilt, restored from an older backup): its tickets' update times say nothing
about what we read, so the watermark is ignored and the next run reads everything.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from incident_ops.engine.outcomes import ActionOutcome

log = logging.getLogger(__name__)

# How far the desk's clock may lag ours: margin taken off the fetch's start time.
DEFAULT_SKEW = timedelta(seconds=60)
HOLD_BACK = ("failed", "stale", "waiting", "deferred", "dropped")


@dataclass(frozen=True)
class Watermark:
    at: datetime
    desk_mark: int | None = None  # the desk's history mark when the fetch began

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "desk_mark": self.desk_mark}

    @classmethod
    def from_dict(cls, data: Any) -> Watermark:
        if isinstance(data, str):  # written by the first versions: a bare time
            return cls(datetime.fromisoformat(data))
        mark = data.get("desk_mark")
        return cls(datetime.fromisoformat(str(data["at"])),
                   int(mark) if mark is not None else None)


def read_since(stored: Watermark | None, desk_mark: int) -> datetime | None:
    """Where this run's incremental read starts; None: read everything."""
    if stored is None:
        return None
    if stored.desk_mark is not None and desk_mark < stored.desk_mark:
        log.warning("the desk's history mark %d is below the watermark's %d: this is not the "
                    "desk the watermark was taken on (re-seeded or restored); reading "
                    "everything", desk_mark, stored.desk_mark)
        return None
    return stored.at


def next_watermark(previous: Watermark | None, fetch_started: datetime, desk_mark: int,
                   updated: Mapping[str, datetime], outcomes: Sequence[ActionOutcome],
                   skew: timedelta = DEFAULT_SKEW) -> Watermark:
    held = [updated[o.ticket_id] for o in outcomes
            if o.outcome in HOLD_BACK and o.ticket_id in updated]
    if held:
        return Watermark(min(held), desk_mark)
    mark = fetch_started - skew
    usable = previous if previous is not None and (
        previous.desk_mark is None or previous.desk_mark <= desk_mark) else None
    return Watermark(mark if usable is None else max(usable.at, mark), desk_mark)
