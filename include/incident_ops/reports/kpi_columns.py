"""The columns every KPI of a period needs, derived once for the whole ticket frame: when a
ticket counts as resolved, responded to and closed, its resolution and response times on
the wall clock and on the SLA clock, its targets, whether 100.6 bounced it; and the masks
of one period (``masks``). See ``reports.kpis`` for which tickets count where.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from incident_ops.model import CLOSED, RESOLVED
from incident_ops.policy.escalation import SlaPolicy
from incident_ops.reports import sla as sla_clock
from incident_ops.reports.closure_outcomes import bounced, reopen_copies
from incident_ops.reports.periods import Period


class DerivedColumns:
    """Columns every period needs, computed once for the whole frame."""

    def __init__(self, frame: pd.DataFrame, sla: SlaPolicy | None) -> None:
        """``sla``: the SLA clock and targets (None: wall clock, no targets)."""
        self.f = frame
        self.sla = sla
        done = frame["status"].isin((RESOLVED, CLOSED))
        resolved = frame["resolved_at"].where(frame["resolved_at"].notna(),
                                              frame["completed_at"])
        self.resolved_at = resolved.where(done)
        self.responded_at = frame["responded_at"]
        self.closed_at = frame["closed_at"].where(frame["status"] == CLOSED)
        ttr = sla_clock.wall_hours(frame["created"], self.resolved_at)
        self.response_wall_h = sla_clock.wall_hours(frame["created"], self.responded_at)
        self.bad_ttr = ttr < 0  # resolved before created: a data error, never averaged
        # The resolver's recorded completion time (100.6.8) before creation: a bad record,
        # counted on its own (the measured time is the desk's).
        self.bad_record = frame["completed_at"] < frame["created"]
        self.ttr_h = ttr.where(~self.bad_ttr)
        if sla is not None:
            self.target_h = sla_clock.target_hours(frame["priority"], frame["impact"],
                                                   sla)
            sla_h = sla_clock.elapsed_hours(frame["created"], self.resolved_at,
                                            frame["priority"], sla, wall=ttr)
            self.sla_h = sla_h.where(~self.bad_ttr)
            self.respond_target_h = sla_clock.respond_hours(frame["priority"], sla)
            self.response_h = sla_clock.elapsed_hours(frame["created"], self.responded_at,
                                                      frame["priority"], sla,
                                                      wall=self.response_wall_h)
        else:
            self.target_h = pd.Series(np.nan, index=frame.index)
            self.sla_h = self.ttr_h
            self.respond_target_h = pd.Series(np.nan, index=frame.index)
            self.response_h = pd.Series(np.nan, index=frame.index)
        # A duplicate is answered through its master: its own pick-up time says nothing.
        self.respondable = frame["duplicate_of"].isna() & self.respond_target_h.notna()
        # A categorical (``reports.frame``): classified once per distinct stamp.
        automation = frame["automation"]
        if isinstance(automation.dtype, pd.CategoricalDtype) and \
                "" not in automation.cat.categories:
            automation = automation.cat.add_categories([""])
        automation = automation.fillna("")
        self.bounced = bounced(automation, frame["bounces"])
        self.automation = automation
        # Only a ticket created under a key can be a reopened copy, and most have none: the
        # keys are read only where there is one.
        keys = frame["idempotency_key"]
        has_key = keys.notna().to_numpy()
        self.reopen_copy = np.zeros(len(frame), dtype=bool)
        self.reopen_copy[has_key] = reopen_copies(keys[has_key])

    def masks(self, period: Period) -> dict[str, pd.Series]:
        start, end = pd.Timestamp(period.start_utc), pd.Timestamp(period.end_utc)
        f = self.f
        created = (f["created"] >= start) & (f["created"] < end)
        resolved = (self.resolved_at >= start) & (self.resolved_at < end)
        closed = (self.closed_at >= start) & (self.closed_at < end)
        answered, late = self._responses(created, end)
        return {"created": created, "resolved": resolved, "closed": closed,
                "touched": created | resolved | closed,
                "response_measured": answered | late,
                "response_met": answered & (self.response_h <= self.respond_target_h)}

    def _responses(self, created: pd.Series, end: pd.Timestamp
                   ) -> tuple[pd.Series, pd.Series]:
        """Of the tickets created (``created``): those answered, and those unanswered whose
        response target passed before ``end``."""
        eligible = created & self.respondable
        answered = eligible & self.response_h.notna()
        waiting = eligible & self.responded_at.isna()
        late = pd.Series(False, index=self.f.index)
        sla = self.sla
        if sla is not None and waiting.any():
            f = self.f[waiting]
            until = pd.Series(end, index=f.index).dt.as_unit("us")
            waited = sla_clock.elapsed_hours(f["created"], until, f["priority"], sla)
            late[waiting] = (waited > self.respond_target_h[waiting]).to_numpy()
        return answered, late
