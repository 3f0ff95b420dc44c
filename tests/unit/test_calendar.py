"""Business-hours arithmetic: the fast ``Calendar.add`` against the plain day-by-day walk."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from incident_ops.config import load_yaml
from incident_ops.policy.calendar import Calendar


def walk(cal: Calendar, moment: datetime, hours: float) -> datetime:
    """The reference: walk the calendar a day at a time with aware datetimes."""
    remaining = timedelta(hours=hours)
    local = moment.astimezone(cal.tz)
    day = local.date()
    for _ in range(3660):
        if cal.is_working_day(day):
            open_at = datetime.combine(day, cal.start, cal.tz)
            close_at = datetime.combine(day, cal.end, cal.tz)
            begin = max(open_at, local)
            if begin < close_at:
                available = close_at - begin
                if remaining <= available:
                    return (begin + remaining).astimezone(UTC)
                remaining -= available
        day += timedelta(days=1)
        local = datetime.combine(day, time(0), cal.tz)
    raise ValueError("no working time")


SHANGHAI = Calendar.from_dict(load_yaml("sla.yaml")["calendar"], "Asia/Shanghai")
# A zone with daylight saving and odd hours, to check the wall-clock arithmetic.
BERLIN = Calendar.from_dict({"days": ["mon", "tue", "thu", "sat"], "start": "07:30",
                             "end": "11:45", "holidays": ["2026-03-28", "2026-10-24"]},
                            "Europe/Berlin")

moments = st.datetimes(min_value=datetime(2025, 12, 1), max_value=datetime(2026, 12, 31),
                       timezones=st.just(UTC))
hours = st.one_of(st.sampled_from([0, 0.25, 1, 2, 4, 6, 8, 9, 18, 24, 72]),
                  st.floats(min_value=0, max_value=400, allow_nan=False))


@settings(max_examples=1500, deadline=None)
@given(cal=st.sampled_from([SHANGHAI, BERLIN]), moment=moments, hours=hours)
def test_add_equals_the_day_by_day_walk(cal: Calendar, moment: datetime, hours: float) -> None:
    assert cal.add(moment, hours) == walk(cal, moment, hours)


def test_edges_of_the_working_day() -> None:
    friday_open = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)  # Friday 09:00 Shanghai
    for h in (0, 9, 9.0001, 18, 27, 45, 72):
        assert SHANGHAI.add(friday_open, h) == walk(SHANGHAI, friday_open, h), h
    friday_close = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)  # 18:00
    assert SHANGHAI.add(friday_close, 0) == datetime(2026, 11, 30, 1, 0, tzinfo=UTC)


def test_a_calendar_without_working_days_says_so() -> None:
    import pytest

    never = Calendar.from_dict({"days": ["mon"], "holidays": [
        date(2026, 1, 5) + timedelta(weeks=w) for w in range(600)]}, "UTC")
    with pytest.raises(ValueError):
        never.add(datetime(2026, 1, 1, tzinfo=UTC), 1)
