"""Business-hours arithmetic for SLA targets: "8 business hours after Friday 16:00".

Pure: a ``Calendar`` is built from ``sla.yaml`` and only adds durations to aware datetimes.
Holidays and weekends are skipped; the answer is in UTC, the working day in the calendar's
time zone (Asia/Shanghai by default), so a China holiday is a holiday whatever the server's
zone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ONE_DAY = timedelta(days=1)
_ZERO = timedelta(0)
_MEMO_SIZE = 100_000  # (day, n) answers kept per calendar


@dataclass(frozen=True)
class Calendar:
    tz: ZoneInfo
    days: frozenset[int]  # weekday numbers (Monday = 0) that are working days
    start: time
    end: time
    holidays: frozenset[date]
    _after: dict[tuple[date, int], date] = field(default_factory=dict, init=False,
                                                 compare=False, hash=False, repr=False)

    @classmethod
    def from_dict(cls, data: dict, tz: str) -> Calendar:
        days = frozenset(DAY_NAMES.index(d.lower()[:3]) for d in data.get("days", DAY_NAMES[:5]))
        holidays = frozenset(
            h if isinstance(h, date) else date.fromisoformat(str(h))
            for h in data.get("holidays", ()))
        start = time.fromisoformat(str(data.get("start", "09:00")))
        end = time.fromisoformat(str(data.get("end", "18:00")))
        if end <= start:
            raise ValueError(f"calendar end {end} is not after start {start}")
        return cls(ZoneInfo(tz), days, start, end, holidays)

    def is_working_day(self, day: date) -> bool:
        return day.weekday() in self.days and day not in self.holidays

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
        if day.weekday() in self.days and day not in self.holidays:
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
