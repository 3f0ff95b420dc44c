"""Business-hours arithmetic: the fast ``Calendar.add`` against the plain day-by-day walk,
China's working calendar (holidays and make-up working days), deployment overrides, and the
warning for a year whose data is incomplete."""

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

moments = st.datetimes(min_value=datetime(2025, 12, 1), max_value=datetime(2027, 12, 31),
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


def shanghai(*args: int) -> datetime:
    """A wall-clock time in Shanghai, as the aware UTC moment the desk would hold."""
    return datetime(*args, tzinfo=SHANGHAI.tz).astimezone(UTC)


def test_friday_evening_before_spring_festival_falls_due_on_the_make_up_saturday() -> None:
    # The example: 2026-02-14 is a Saturday worked to bridge the Spring Festival.
    assert SHANGHAI.add(shanghai(2026, 2, 13, 17), 4) == shanghai(2026, 2, 14, 12)


def test_2026_spring_festival_and_national_day() -> None:
    # Feb 15 (Sun) to Feb 23 (Mon, off for the make-up Saturday 28th) are off.
    assert SHANGHAI.add(shanghai(2026, 2, 14, 17), 4) == shanghai(2026, 2, 24, 12)
    # Saturday 28 Feb works.
    assert SHANGHAI.add(shanghai(2026, 2, 27, 17), 4) == shanghai(2026, 2, 28, 12)
    # Sunday 20 Sep works; 1-7 Oct are off; Saturday 10 Oct works.
    assert SHANGHAI.add(shanghai(2026, 9, 19, 10), 1) == shanghai(2026, 9, 20, 10)
    assert SHANGHAI.add(shanghai(2026, 9, 30, 17), 4) == shanghai(2026, 10, 8, 12)
    assert SHANGHAI.add(shanghai(2026, 10, 9, 17), 4) == shanghai(2026, 10, 10, 12)
    # 2 Jan (Fri) off, 4 Jan (Sun) works; 6 Apr (Mon) off after Qingming.
    assert SHANGHAI.add(shanghai(2025, 12, 31, 17), 4) == shanghai(2026, 1, 4, 12)
    assert SHANGHAI.add(shanghai(2026, 4, 3, 17), 4) == shanghai(2026, 4, 7, 12)


def test_2027_spring_festival_and_national_day_from_the_package() -> None:
    # holidays 0.109 knows 2027's days off (5-10 Feb, 1-5 Oct) but no make-up days yet.
    assert SHANGHAI.add(shanghai(2027, 2, 4, 17), 4) == shanghai(2027, 2, 11, 12)
    assert SHANGHAI.add(shanghai(2027, 9, 30, 17), 4) == shanghai(2027, 10, 6, 12)
    # Five working days (45 h) across the festival: Wed 3, Thu 4, Thu 11, Fri 12, Mon 15.
    assert SHANGHAI.add(shanghai(2027, 2, 3, 9), 45) == shanghai(2027, 2, 15, 18)


def test_deployment_overrides_win_over_the_package() -> None:
    cal = Calendar.from_dict({**load_yaml("sla.yaml")["calendar"],
                              "extra_workdays": ["2027-02-20"],  # a make-up Saturday
                              "extra_holidays": ["2026-02-14", "2026-12-31"]},
                             "Asia/Shanghai")
    assert cal.add(shanghai(2027, 2, 19, 17), 4) == shanghai(2027, 2, 20, 12)
    # The package's make-up Saturday 14 Feb 2026 is a day off here.
    assert cal.add(shanghai(2026, 2, 13, 17), 4) == shanghai(2026, 2, 24, 12)
    assert not cal.is_working_day(date(2026, 12, 31))


def test_a_day_cannot_be_both_an_extra_holiday_and_an_extra_working_day() -> None:
    import pytest

    with pytest.raises(ValueError, match="2027-02-20 listed both"):
        Calendar.from_dict({"extra_workdays": ["2027-02-20"], "extra_holidays": ["2027-02-20"]},
                           "Asia/Shanghai")
    with pytest.raises(ValueError, match=r"calendar.extra_workdays: '2027-02-30' is not a date"):
        Calendar.from_dict({"extra_workdays": ["2027-02-30"]}, "Asia/Shanghai")
    with pytest.raises(ValueError, match="'XX' is not a country"):
        Calendar.from_dict({"holidays_from": "XX"}, "Asia/Shanghai")


def test_the_coming_year_without_make_up_days_is_warned_about() -> None:
    late_2026 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    (warning,) = SHANGHAI.coverage_warnings(late_2026)
    assert "2027" in warning and "make-up working days" in warning and "调休" in warning
    assert "extra_workdays" in warning and "holidays 0.109" in warning
    # Before warn_days_ahead (90) the coming year is not looked at; 2026 itself is complete.
    assert SHANGHAI.coverage_warnings(datetime(2026, 6, 1, tzinfo=UTC)) == []
    # In 2027 the current year itself is incomplete.
    assert len(SHANGHAI.coverage_warnings(datetime(2027, 3, 1, tzinfo=UTC))) == 1
    # Once the deployment enters a make-up day of 2027, the year counts as covered.
    covered = Calendar.from_dict({**load_yaml("sla.yaml")["calendar"],
                                  "extra_workdays": ["2027-02-20"]}, "Asia/Shanghai")
    assert covered.coverage_warnings(late_2026) == []
    # A calendar without a public source has nothing to be incomplete about.
    assert BERLIN.coverage_warnings(late_2026) == []


@settings(max_examples=300, deadline=None)
@given(moment=moments, hours=st.floats(min_value=0.01, max_value=200, allow_nan=False))
def test_the_reports_vectorised_clock_counts_the_same_hours(moment: datetime,
                                                           hours: float) -> None:
    """The report's SLA clock (numpy, whole columns) and the ladder's ``Calendar.add``
    agree, make-up Saturdays included: from a moment to ``add(moment, h)`` is ``h``."""
    import pandas as pd

    from incident_ops.policy.escalation import SlaPolicy
    from incident_ops.reports.sla import elapsed_hours

    policy = SlaPolicy.from_dict(load_yaml("sla.yaml"))
    due = SHANGHAI.add(moment, hours)
    got = elapsed_hours(pd.Series([pd.Timestamp(moment)]), pd.Series([pd.Timestamp(due)]),
                        pd.Series(["low"]), policy)
    assert abs(got.iloc[0] - hours) < 1e-6
