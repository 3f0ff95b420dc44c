"""Reporting periods: a day, an ISO week or a calendar month, in the organisation's time zone.

A period is half-open, ``[start, end)``, with both ends at local midnight (Asia/Shanghai by
default): a ticket created 2026-11-25 23:30 in Shanghai (15:30 UTC) belongs to the 25th,
one created at 00:10 on the 26th (16:10 UTC on the 25th) to the 26th. Pure: ``now`` and the
date come in as arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

KINDS = ("daily", "weekly", "monthly")


class UnknownPeriod(ValueError):
    """A period kind other than daily, weekly or monthly."""


@dataclass(frozen=True)
class Period:
    kind: str  # daily | weekly | monthly
    first_day: date  # the period's first local day
    tz: str = "Asia/Shanghai"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise UnknownPeriod(f"period kind {self.kind!r} is not one of {', '.join(KINDS)}")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    @property
    def last_day(self) -> date:
        return self.next().first_day - timedelta(days=1)

    @property
    def start(self) -> datetime:
        """Local midnight of the first day (aware, in the period's zone)."""
        return datetime.combine(self.first_day, time(0), self.zone)

    @property
    def end(self) -> datetime:
        """Local midnight after the last day: excluded."""
        return self.next().start

    @property
    def start_utc(self) -> datetime:
        return self.start.astimezone(UTC)

    @property
    def end_utc(self) -> datetime:
        return self.end.astimezone(UTC)

    @property
    def label(self) -> str:
        """``2026-11-25``, ``2026-W48`` or ``2026-11``: the archive folder and mail key."""
        if self.kind == "daily":
            return self.first_day.isoformat()
        if self.kind == "weekly":
            year, week, _ = self.first_day.isocalendar()
            return f"{year}-W{week:02d}"
        return f"{self.first_day:%Y-%m}"

    @property
    def days(self) -> list[date]:
        n = (self.last_day - self.first_day).days + 1
        return [self.first_day + timedelta(days=i) for i in range(n)]

    def next(self) -> Period:
        if self.kind == "daily":
            return Period(self.kind, self.first_day + timedelta(days=1), self.tz)
        if self.kind == "weekly":
            return Period(self.kind, self.first_day + timedelta(days=7), self.tz)
        y, m = self.first_day.year, self.first_day.month
        return Period(self.kind, date(y + m // 12, m % 12 + 1, 1), self.tz)

    def previous(self) -> Period:
        if self.kind == "daily":
            return Period(self.kind, self.first_day - timedelta(days=1), self.tz)
        if self.kind == "weekly":
            return Period(self.kind, self.first_day - timedelta(days=7), self.tz)
        y, m = self.first_day.year, self.first_day.month
        return Period(self.kind, date(y - (m == 1), (m - 2) % 12 + 1, 1), self.tz)

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "first_day": self.first_day.isoformat(), "tz": self.tz,
                "label": self.label, "start": self.start.isoformat(),
                "end": self.end.isoformat()}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Period:
        return cls(data["kind"], date.fromisoformat(data["first_day"]), data["tz"])


def period_containing(kind: str, day: date, tz: str = "Asia/Shanghai") -> Period:
    """The period of ``kind`` that holds local ``day``."""
    if kind == "daily":
        return Period(kind, day, tz)
    if kind == "weekly":
        return Period(kind, day - timedelta(days=day.weekday()), tz)
    return Period(kind, day.replace(day=1), tz)


def last_complete(kind: str, now: datetime, tz: str = "Asia/Shanghai") -> Period:
    """The latest period that ended at or before ``now``: what a scheduled run reports.

    A daily run at 07:00 on the 26th reports the 25th; a weekly run on Monday the week
    before; a monthly run on the 1st the month before.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    today = now.astimezone(ZoneInfo(tz)).date()
    return period_containing(kind, today, tz).previous()
