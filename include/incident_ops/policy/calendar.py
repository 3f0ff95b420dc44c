"""Business-hours arithmetic for SLA targets: "8 business hours after Friday 16:00".

Pure: a ``Calendar`` is built from ``sla.yaml`` and only adds durations to aware datetimes.
Holidays and weekends are skipped; the answer is in UTC, the working day in the calendar's
time zone (Asia/Shanghai by default), so a China holiday is a holiday whatever the server's
zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Calendar:
    tz: ZoneInfo
    days: frozenset[int]  # weekday numbers (Monday = 0) that are working days
    start: time
    end: time
    holidays: frozenset[date]

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
        """``moment`` plus ``hours`` of working time, in UTC."""
        remaining = timedelta(hours=hours)
        local = moment.astimezone(self.tz)
        day = local.date()
        for _ in range(3660):  # ten years of days: a calendar with no working day ends here
            if self.is_working_day(day):
                open_at = datetime.combine(day, self.start, self.tz)
                close_at = datetime.combine(day, self.end, self.tz)
                begin = max(open_at, local)
                if begin < close_at:
                    available = close_at - begin
                    if remaining <= available:
                        return (begin + remaining).astimezone(UTC)
                    remaining -= available
            day += timedelta(days=1)
            local = datetime.combine(day, time(0), self.tz)
        raise ValueError("the calendar has no working time in ten years")
