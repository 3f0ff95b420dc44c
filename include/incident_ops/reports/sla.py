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

from collections.abc import Collection, Mapping
from datetime import time

import numpy as np
import pandas as pd

from incident_ops.policy.calendar import Calendar
from incident_ops.policy.escalation import SlaPolicy


def target_hours(priority: pd.Series, impact: pd.Series, policy: SlaPolicy) -> pd.Series:
    """Resolve target per ticket: its priority's, or its impact's when that is stricter."""
    by_priority = _lookup(priority, policy.resolve_hours)
    by_impact = _lookup(impact, policy.impact_resolve_hours)
    return pd.Series(np.fmin(by_priority.to_numpy(), by_impact.to_numpy()), index=priority.index)


def respond_hours(priority: pd.Series, policy: SlaPolicy) -> pd.Series:
    """Response target per ticket: its priority's ``respond`` hours (NaN for none)."""
    return _lookup(priority, policy.respond_hours)


def _lookup(codes: pd.Series, hours: Mapping[str, float]) -> pd.Series:
    """``hours`` of each code (NaN for a missing or unknown code); a categorical column is
    looked up once per category instead of once per row."""
    if not isinstance(codes.dtype, pd.CategoricalDtype):
        return codes.astype(object).map(hours).astype("float64")
    per_category = np.array([hours.get(c, np.nan) for c in codes.cat.categories] + [np.nan],
                            dtype=np.float64)
    return pd.Series(per_category[codes.cat.codes.to_numpy()], index=codes.index,
                     name=codes.name)


def _in(codes: pd.Series, wanted: Collection[str]) -> np.ndarray:
    """Which rows hold one of ``wanted`` (per category for a categorical column)."""
    if not isinstance(codes.dtype, pd.CategoricalDtype):
        return codes.astype(object).isin(wanted).to_numpy()
    per_category = np.array([c in wanted for c in codes.cat.categories] + [False])
    return per_category[codes.cat.codes.to_numpy()]


def elapsed_hours(start: pd.Series, end: pd.Series, priority: pd.Series,
                  policy: SlaPolicy, wall: pd.Series | None = None) -> pd.Series:
    """Hours from ``start`` to ``end`` on each ticket's SLA clock (NaN where either is NaT).

    Priorities the calendar applies to (medium, low by default) count working hours only;
    the others count wall-clock hours, as ``SlaPolicy.add`` does. ``wall``: the wall-clock
    hours, ``wall_hours(start, end)``, when the caller has them already.
    """
    if wall is None:
        wall = wall_hours(start, end)
    calendar = policy.calendar
    if calendar is None or not policy.calendar_priorities:
        return wall
    use = pd.Series(_in(priority, policy.calendar_priorities), index=priority.index) & \
        start.notna() & end.notna()
    if not use.any():
        return wall
    # Local time runs in step with UTC, so the first and last local years are those of
    # the earliest and the latest moment.
    rows = use.to_numpy()
    moments = np.concatenate([_utc_micros(start)[rows], _utc_micros(end)[rows]])
    ends = pd.Series(np.array([moments.min(), moments.max()]).view("datetime64[us]")
                     ).dt.tz_localize("UTC").dt.tz_convert(calendar.tz)
    span = (int(ends.dt.year.min()) - 1, int(ends.dt.year.max()))  # one origin for both ends
    worked = (_working_seconds(end[use], calendar, span)
              - _working_seconds(start[use], calendar, span))
    out = wall.copy()
    out[use] = worked / 3600.0
    return out


def wall_hours(start: pd.Series, end: pd.Series) -> pd.Series:
    """Wall-clock hours from ``start`` to ``end`` (NaN where either is NaT)."""
    return (end - start).dt.total_seconds() / 3600.0


def _utc_micros(moments: pd.Series) -> np.ndarray:
    """UTC microseconds since the epoch of an aware datetime column (no copy)."""
    return moments.dt.as_unit("us").to_numpy(dtype="datetime64[us]").view(np.int64)


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
    at = np.searchsorted(extra, day, side="left")
    whole_days = np.busday_count(origin, day, weekmask=weekmask, holidays=holidays) + \
        at - np.searchsorted(extra, origin, side="left")
    # ``extra`` is sorted (Calendar.exceptions): where ``day`` would go says if it is there
    made_up = extra[np.minimum(at, len(extra) - 1)] == day if len(extra) else \
        np.zeros(len(day), dtype=bool)
    working_today = np.is_busday(day, weekmask=weekmask, holidays=holidays) | made_up
    today = np.clip(time_of_day - opens, 0, length) * working_today
    return np.asarray(whole_days * length + today, dtype=np.float64)


def _seconds(moment: time) -> int:
    return moment.hour * 3600 + moment.minute * 60 + moment.second
