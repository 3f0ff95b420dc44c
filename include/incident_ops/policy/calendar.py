"""Business-hours arithmetic for SLA targets: "8 business hours after Friday 16:00".

Pure: a ``Calendar`` is built from ``sla.yaml`` and only adds durations to aware datetimes.
The answer is in UTC, the working day in the calendar's time zone (Asia/Shanghai by
default), so a China holiday is a holiday whatever the server's zone.

Which days are working days, strongest rule first:
1. the deployment's ``extra_workdays`` (a make-up day announced after the package release);
2. the deployment's ``extra_holidays`` (a provincial holiday, a company day off);
3. the public calendar of ``holidays_from`` (the PyPI package ``holidays``, e.g. ``CN``):
   its make-up working days (调休, a Saturday or Sunday worked to bridge a holiday) are
   working days, its holidays are days off;
4. the weekdays of ``days`` (Monday to Friday).

The State Council publishes a year's holidays and make-up days late in the year before, and
the package carries them from its next release on; until then the package knows a year's
holidays by rule but none of its make-up days. ``coverage_warnings`` says so for the
current year and, from ``warn_days_ahead`` before it starts, the coming one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ONE_DAY = timedelta(days=1)
_ZERO = timedelta(0)
_MEMO_SIZE = 100_000  # (day, n) answers kept per calendar
_LOOKBACK_YEARS = 10  # a source that had make-up days in these years is expected to have more


@dataclass(frozen=True)
class YearData:
    """What the public calendar says about one year: days off and make-up working days."""

    days_off: frozenset[date]
    workdays: frozenset[date]


@dataclass(frozen=True)
class Calendar:
    tz: ZoneInfo
    days: frozenset[int]  # weekday numbers (Monday = 0) that are working days
    start: time
    end: time
    holidays: frozenset[date] = frozenset()  # the deployment's extra days off
    workdays: frozenset[date] = frozenset()  # the deployment's extra working days
    country: str | None = None  # the ``holidays`` package's country code, None for none
    warn_days_ahead: int = 90
    _after: dict[tuple[date, int], date] = field(default_factory=dict, init=False,
                                                 compare=False, hash=False, repr=False)
    _years: dict[int, YearData] = field(default_factory=dict, init=False, compare=False,
                                        hash=False, repr=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any], tz: str) -> Calendar:
        """From ``sla.yaml``'s ``calendar`` section; raises ``ValueError`` naming the key."""
        days = frozenset(DAY_NAMES.index(d.lower()[:3]) for d in data.get("days", DAY_NAMES[:5]))
        # "holidays" is the name of the deployment's list before the public source came.
        holidays = _dates(data, "extra_holidays") | _dates(data, "holidays")
        workdays = _dates(data, "extra_workdays")
        both = sorted(holidays & workdays)
        if both:
            raise ValueError(f"calendar: {', '.join(map(str, both))} listed both as extra "
                             "holiday and as extra working day")
        start = time.fromisoformat(str(data.get("start", "09:00")))
        end = time.fromisoformat(str(data.get("end", "18:00")))
        if end <= start:
            raise ValueError(f"calendar end {end} is not after start {start}")
        country = data.get("holidays_from")
        calendar = cls(ZoneInfo(tz), days, start, end, holidays, workdays,
                       str(country).upper() if country else None,
                       int(data.get("warn_days_ahead", 90)))
        if calendar.country:
            calendar.year(2000)  # an unknown country fails here, when the file is loaded
        return calendar

    # -- which days work ---------------------------------------------------------------

    def year(self, year: int) -> YearData:
        """The public calendar's days off and make-up days in ``year`` (cached)."""
        found = self._years.get(year)
        if found is None:
            found = self._years[year] = _public_year(self.country, year)
        return found

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        public = self.year(day.year)
        if day in public.workdays:
            return True
        return day.weekday() in self.days and day not in public.days_off

    def exceptions(self, first: int, last: int) -> tuple[list[date], list[date]]:
        """Between the years ``first`` and ``last`` (inclusive): the days off that fall on
        a working weekday, and the working days that fall on a weekday off (for numpy's
        busday arithmetic, which knows a weekmask and days off only)."""
        candidates: set[date] = {d for d in (*self.holidays, *self.workdays)
                                 if first <= d.year <= last}
        for year in range(first, last + 1):
            public = self.year(year)
            candidates |= public.days_off | public.workdays
        off = sorted(d for d in candidates
                     if d.weekday() in self.days and not self.is_working_day(d))
        on = sorted(d for d in candidates
                    if d.weekday() not in self.days and self.is_working_day(d))
        return off, on

    def coverage_warnings(self, now: datetime) -> list[str]:
        """Why due times may be wrong: a year (this one, or the coming one from
        ``warn_days_ahead`` before it starts) whose holidays or make-up days are unknown."""
        if not self.country:
            return []
        today = now.astimezone(self.tz).date()
        years = [today.year]
        if (date(today.year + 1, 1, 1) - today).days <= self.warn_days_ahead:
            years.append(today.year + 1)
        return [w for year in years for w in self.year_warnings(year)]

    def year_warnings(self, year: int) -> list[str]:
        """What is missing of ``year``'s public calendar (nothing without a source)."""
        if not self.country:
            return []
        public = self.year(year)
        extra_off = any(d.year == year for d in self.holidays)
        extra_on = any(d.year == year for d in self.workdays)
        if not public.days_off and not extra_off:
            return [f"{year} 年没有节假日数据 / no holiday data for {year} "
                    f"(holidays {_package_version()}, {self.country}): business hours in "
                    f"{year} count every {self._weekdays()} as a working day. Add the "
                    "year's days off to sla.yaml calendar.extra_holidays and its make-up "
                    "working days to calendar.extra_workdays, or upgrade the holidays "
                    "package."]
        expects_make_up = any(self.year(y).workdays
                              for y in range(year - _LOOKBACK_YEARS, year))
        if expects_make_up and not public.workdays and not extra_on:
            return [f"{year} 年节假日数据不完整：缺少调休上班日 / holiday data for {year} is "
                    f"incomplete (holidays {_package_version()}, {self.country}): its "
                    "holidays are known but none of its make-up working days (调休), so "
                    f"those Saturdays and Sundays count as days off. Add them to sla.yaml "
                    "calendar.extra_workdays once published, or upgrade the holidays "
                    "package."]
        return []

    def _weekdays(self) -> str:
        return "/".join(DAY_NAMES[d] for d in sorted(self.days))

    # -- arithmetic ----------------------------------------------------------------------

    def add(self, moment: datetime, hours: float) -> datetime:
        """``moment`` plus ``hours`` of working time, in UTC.

        Wall-clock arithmetic in the calendar's zone (aware datetimes sharing one tzinfo
        add and compare as wall-clock times). The rest of the first working day is used
        first, then whole working days are counted at once: the monitor calls this for
        every rung of every open ticket, so it must not walk the calendar day by day.
        """
        remaining = timedelta(hours=hours)
        tz = self.tz
        local = moment.astimezone(tz)
        day = local.date()
        open_at = datetime.combine(day, self.start, tz)
        span = datetime.combine(day, self.end, tz) - open_at  # a working day's time
        if self.is_working_day(day):
            begin = local if local > open_at else open_at
            available = open_at + span - begin
            if available > _ZERO:
                if remaining <= available:
                    return (begin + remaining).astimezone(UTC)
                remaining -= available
        # Whole days from the next working day on: the last one holds (0, span] of it.
        days = -(-remaining // span) or 1
        last = self._working_day_after(day, days)
        return (datetime.combine(last, self.start, tz)
                + (remaining - (days - 1) * span)).astimezone(UTC)

    def _working_day_after(self, day: date, n: int) -> date:
        """The ``n``-th working day after ``day`` (memoised: queues share few dates)."""
        key = (day, n)
        found = self._after.get(key)
        if found is not None:
            return found
        current, counted = day, 0
        for _ in range(3660):  # ten years of days: a calendar with no working day ends here
            current += _ONE_DAY
            if self.is_working_day(current):
                counted += 1
                if counted == n:
                    if len(self._after) < _MEMO_SIZE:
                        self._after[key] = current
                    return current
        raise ValueError("the calendar has no working time in ten years")


def _dates(data: dict[str, Any], key: str) -> frozenset[date]:
    values = data.get(key) or ()
    if not isinstance(values, Iterable) or isinstance(values, str | bytes):
        raise ValueError(f"calendar.{key} must be a list of dates (YYYY-MM-DD)")
    out = set()
    for value in values:
        try:
            out.add(value if isinstance(value, date) else date.fromisoformat(str(value)))
        except ValueError as exc:
            raise ValueError(f"calendar.{key}: {value!r} is not a date (YYYY-MM-DD)") from exc
    return frozenset(out)


_EMPTY = YearData(frozenset(), frozenset())


def _public_year(country: str | None, year: int) -> YearData:
    if not country:
        return _EMPTY
    import holidays  # imported on first use: parsing a DAG file never needs it

    try:
        public = holidays.country_holidays(country, years=year)
    except NotImplementedError as exc:
        raise ValueError(f"calendar.holidays_from: '{country}' is not a country the holidays "
                         "package knows (an ISO 3166 code such as CN)") from exc
    make_up = getattr(public, "weekend_workdays", ()) or ()
    return YearData(frozenset(public), frozenset(d for d in make_up if d.year == year))


def _package_version() -> str:
    import holidays

    return str(getattr(holidays, "__version__", "?"))
