"""Resolution targets and elapsed SLA time for whole columns of tickets (vectorised).

The targets and the business-hours calendar are the escalation ladder's (``sla.yaml`` read
by ``policy.escalation.SlaPolicy``), so a ticket the ladder calls breached is breached in the
report too. ``Calendar.add`` walks day by day for one ticket; here the same arithmetic is
done for a million at once: working seconds since a fixed Monday are a function of the
moment alone (``numpy.busday_count`` for the whole days, plus the make-up working days
before it, a clipped time of day for the last), and elapsed working time is the difference
of two such values. The days off and make-up days are the calendar's own
(``Calendar.exceptions``), so the ladder and the report count the same hours.
"""

from __future__ import annotations

from datetime import time

import numpy as np
import pandas as pd

from incident_ops.policy.calendar import Calendar
from incident_ops.policy.escalation import SlaPolicy


def target_hours(priority: pd.Series, impact: pd.Series, policy: SlaPolicy) -> pd.Series:
    """Resolve target per ticket: its priority's, or its impact's when that is stricter."""
    by_priority = priority.astype(object).map(policy.resolve_hours).astype("float64")
    by_impact = impact.astype(object).map(policy.impact_resolve_hours).astype("float64")
    return pd.Series(np.fmin(by_priority.to_numpy(), by_impact.to_numpy()), index=priority.index)


def respond_hours(priority: pd.Series, policy: SlaPolicy) -> pd.Series:
    """Response target per ticket: its priority's ``respond`` hours (NaN for none)."""
    return priority.astype(object).map(policy.respond_hours).astype("float64")


def elapsed_hours(start: pd.Series, end: pd.Series, priority: pd.Series,
                  policy: SlaPolicy) -> pd.Series:
    """Hours from ``start`` to ``end`` on each ticket's SLA clock (NaN where either is NaT).

    Priorities the calendar applies to (medium, low by default) count working hours only;
    the others count wall-clock hours, as ``SlaPolicy.add`` does.
    """
    wall = (end - start).dt.total_seconds() / 3600.0
    calendar = policy.calendar
    if calendar is None or not policy.calendar_priorities:
        return wall
    use = priority.astype(object).isin(policy.calendar_priorities) & start.notna() & end.notna()
    if not use.any():
        return wall
    years = pd.concat([start[use], end[use]]).dt.tz_convert(calendar.tz).dt.year
    span = (int(years.min()) - 1, int(years.max()))  # one origin for both ends
    worked = (_working_seconds(end[use], calendar, span)
              - _working_seconds(start[use], calendar, span))
    out = wall.copy()
    out[use] = worked / 3600.0
    return out


def _working_seconds(moments: pd.Series, calendar: Calendar, years: tuple[int, int]
                     ) -> np.ndarray:
    """Working seconds between the Monday before ``years[0]`` and each moment (all of them
    local in those years)."""
    local = moments.dt.tz_convert(calendar.tz).dt.tz_localize(None).to_numpy()
    day = local.astype("datetime64[D]")
    # numpy's busday arithmetic knows a weekmask and days off; make-up working days on
    # weekend days (调休) are counted separately and added.
    days_off, make_up = calendar.exceptions(*years)
    origin = np.datetime64(f"{years[0]}-01-01", "D")
    origin -= (origin.view("int64") - 4) % 7  # back to a Monday (1970-01-05 is day 4)
    weekmask = [1 if weekday in calendar.days else 0 for weekday in range(7)]
    holidays = np.array(days_off, dtype="datetime64[D]")
    extra = np.array(make_up, dtype="datetime64[D]")
    opens = _seconds(calendar.start)
    length = _seconds(calendar.end) - opens
    time_of_day = (local - day).astype("timedelta64[us]").astype(np.int64) / 1e6
    whole_days = np.busday_count(origin, day, weekmask=weekmask, holidays=holidays) + \
        np.searchsorted(extra, day, side="left") - np.searchsorted(extra, origin, side="left")
    working_today = np.is_busday(day, weekmask=weekmask, holidays=holidays) | \
        np.isin(day, extra)
    today = np.clip(time_of_day - opens, 0, length) * working_today
    return np.asarray(whole_days * length + today, dtype=np.float64)


def _seconds(moment: time) -> int:
    return moment.hour * 3600 + moment.minute * 60 + moment.second
