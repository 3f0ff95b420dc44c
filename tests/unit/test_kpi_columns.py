"""The columnar input path (reports.frame.frame_from_columns) and the per-code shortcuts of
the KPIs: the same frame and the same numbers as the ticket path and pandas' own per-row
operations, on varied tickets (missing fields, repeated ids, duplicates, reopened copies,
times in several zones)."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from incident_ops.config import load_vocabulary, load_yaml
from incident_ops.model import Ticket
from incident_ops.policy.escalation import SlaPolicy
from incident_ops.reports import sla as sla_clock
from incident_ops.reports.frame import (
    BOUNCE_KEY_PREFIX,
    CODE_COLUMNS,
    COLUMNS,
    DATE_COLUMNS,
    TEXT_COLUMNS,
    frame_from_columns,
    frame_from_tickets,
)
from incident_ops.reports.kpis import (
    NOT_SET,
    KpiSettings,
    compute_kpis,
    period_tickets,
    value_counts,
)
from incident_ops.reports.periods import Period

SLA = SlaPolicy.from_dict(load_yaml("sla.yaml"))
SETTINGS = KpiSettings.from_config(load_vocabulary(), SLA, tz="Asia/Shanghai")
DAY = Period("daily", date(2026, 11, 25))
SHANGHAI = ZoneInfo("Asia/Shanghai")
ZONES = [UTC, SHANGHAI, timezone(timedelta(hours=-5)), None]  # None: naive, read as UTC


def varied_tickets(n: int = 160, seed: int = 3) -> list[Ticket]:
    """Tickets over the day and the day before, every optional field sometimes missing."""
    rng = random.Random(seed)
    start = DAY.previous().start_utc

    def maybe(values: list[Any]) -> Any:
        return rng.choice([*values, None])

    def moment(at: datetime) -> datetime:
        zone = rng.choice(ZONES)
        return at.replace(tzinfo=None) if zone is None else at.astimezone(zone)

    tickets = []
    for i in range(1, n + 1):
        created = start + timedelta(minutes=rng.randint(-600, 2 * 24 * 60))
        status = rng.choice(["new", "assigned-l1", "in-progress", "resolved", "closed"])
        done = status in ("resolved", "closed")
        hours = rng.choice([0.5, 3, 20, 50, -1])  # -1: resolved before created
        finished = created + timedelta(hours=hours)
        tid = str(rng.randint(1, n // 2)) if i % 17 == 0 else str(i)  # some ids repeat
        tickets.append(Ticket(
            id=tid, subject=rng.choice([f"事件 {i}", "", "NA", "a\rb"]),
            status=status, priority=rng.choice(["urgent", "high", "medium", "low", "p9", ""]),
            created=moment(created), updated=moment(created),
            impact=maybe(["major", "high", "medium", "low"]),
            source=maybe(["monitoring", "phone", "email", "portal"]),
            category=maybe(["fault", "alarm", "request", "odd-one"]),
            system=maybe(["crm", "billing", "boss"]), handler=maybe(["li.na", "wang.fang"]),
            resolver_role=maybe(["l1", "l2", "helpdesk"]),
            close_code=maybe(["solved", "unsuccessful", "workaround"]) if status == "closed"
            else None,
            faulty_vendor=maybe(["华为", "亚信"]), config_item=maybe(["CI-1", "CI-2", "NA"]),
            duplicate_of=maybe(["3", "5", "7"]) if i % 4 == 0 else None,
            confirmation=maybe(["confirmed", "pending", "rejected"]),
            resolved_at=moment(finished) if done and rng.random() < 0.8 else None,
            completed_at=moment(finished + timedelta(minutes=rng.choice([0, -90, 30])))
            if done and rng.random() < 0.7 else None,
            closed_at=moment(finished + timedelta(hours=1)) if status == "closed" else None,
            responded_at=moment(created + timedelta(minutes=rng.randint(1, 600)))
            if rng.random() < 0.7 else None,
            escalation=tuple(["at-risk", "breached", "convene", "management"][
                :rng.randint(0, 4)]),
            automation_keys=rng.choice([(), (f"{BOUNCE_KEY_PREFIX}{i}",), ("close:x",),
                                        (f"{BOUNCE_KEY_PREFIX}a", f"{BOUNCE_KEY_PREFIX}b")]),
            automation=maybe(["100.7.1 close.auto-source · run a",
                              "100.7.1 close.confirmed · run b",
                              "100.7.4 close.handled-by-support · run c",
                              "100.7.1 close.duplicate-cascade · run d",
                              "100.6 completeness · run e"]),
            idempotency_key=maybe([f"reopen:{i}", f"create:{i}", "reopen:same"])))
    return tickets


def columns_of(tickets: list[Ticket], seed: int = 5) -> dict[str, Any]:
    """The tickets as a columnar source might hand them over: codes as categoricals with
    their categories in any order (some unused), times as datetime64 in UTC or in a zone."""
    rng = random.Random(seed)
    cols: dict[str, Any] = {name: [getattr(t, name) for t in tickets] for name in TEXT_COLUMNS}
    for name in CODE_COLUMNS:
        if name == "escalation":
            values = ["|".join(t.escalation) or None for t in tickets]
        else:
            values = [getattr(t, name) for t in tickets]
        categories = sorted({v for v in values if v is not None}) + ["zz-unused", "a-unused"]
        rng.shuffle(categories)
        cols[name] = pd.Categorical(values, categories=categories)
    for i, name in enumerate(DATE_COLUMNS):
        utc = pd.to_datetime([_as_utc(getattr(t, name)) for t in tickets], utc=True)
        # alternately naive UTC datetime64 and aware values in Shanghai
        cols[name] = utc.tz_localize(None).to_numpy() if i % 2 else \
            pd.Series(utc).dt.tz_convert(SHANGHAI)
    cols["bounces"] = np.array([sum(k.startswith(BOUNCE_KEY_PREFIX) for k in t.automation_keys)
                                for t in tickets])
    return cols


def _as_utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def test_columns_and_tickets_give_the_same_frame() -> None:
    tickets = varied_tickets()
    from_tickets = frame_from_tickets(tickets)
    pd.testing.assert_frame_equal(frame_from_columns(columns_of(tickets)), from_tickets)
    assert list(from_tickets.columns) == list(COLUMNS)


def test_a_naive_time_is_read_as_utc_on_both_paths() -> None:
    at = datetime(2026, 11, 25, 3, 0)
    t = Ticket(id="1", subject="x", status="new", priority="high", created=at, updated=at)
    aware = t.with_changes(created=at.replace(tzinfo=UTC))
    assert frame_from_tickets([t])["created"].equals(frame_from_tickets([aware])["created"])


@pytest.mark.parametrize("kind", ["daily", "weekly", "monthly"])
def test_columns_and_tickets_give_the_same_kpis(kind: str) -> None:
    tickets = varied_tickets()
    period = Period(kind, DAY.first_day if kind == "daily" else
                    date(2026, 11, 23) if kind == "weekly" else date(2026, 11, 1))
    a = compute_kpis(frame_from_tickets(tickets), period, SETTINGS)
    b = compute_kpis(frame_from_columns(columns_of(tickets)), period, SETTINGS)
    assert a.headline["created"] > 0
    assert json.dumps(a.to_dict(), sort_keys=True) == json.dumps(b.to_dict(), sort_keys=True)
    detail_a, total_a = period_tickets(frame_from_tickets(tickets), period, SETTINGS)
    detail_b, total_b = period_tickets(frame_from_columns(columns_of(tickets)), period,
                                       SETTINGS)
    assert total_a == total_b
    pd.testing.assert_frame_equal(detail_a, detail_b)


def test_no_columns_of_no_tickets_is_the_empty_frame() -> None:
    empty = frame_from_columns({name: [] for name in COLUMNS})
    pd.testing.assert_frame_equal(empty, frame_from_tickets([]))


def test_a_column_with_no_values_may_be_left_none() -> None:
    tickets = varied_tickets(20)
    cols = columns_of(tickets)
    cols["resolver_role"] = cols["idempotency_key"] = None
    frame = frame_from_columns(cols)
    assert frame["resolver_role"].isna().all() and frame["idempotency_key"].isna().all()
    expected = frame_from_tickets([t.with_changes(resolver_role=None, idempotency_key=None)
                                   for t in tickets])
    pd.testing.assert_frame_equal(frame, expected)


def test_missing_or_uneven_columns_are_refused() -> None:
    cols = columns_of(varied_tickets(10))
    with pytest.raises(ValueError, match="missing"):
        frame_from_columns({k: v for k, v in cols.items() if k != "priority"})
    with pytest.raises(ValueError, match="length"):
        frame_from_columns({**cols, "id": cols["id"][:-1]})


CODES = st.sampled_from(["b", "a", "", "c", None, "NA"])


@settings(max_examples=150, deadline=None)
@given(values=st.lists(CODES, max_size=40), fill=st.sampled_from([NOT_SET, None, "x"]),
       seed=st.integers(0, 1000))
def test_counting_codes_matches_pandas_counting_rows(values: list[str | None],
                                                      fill: str | None, seed: int) -> None:
    """Same counts, same order, ties in order of first appearance, "" merged with missing."""
    categories = sorted({v for v in values if v is not None} | {"unused"})
    random.Random(seed).shuffle(categories)
    coded = pd.Series(pd.Categorical(values, categories=categories))
    plain = pd.Series(values, dtype="str")
    expected = plain.astype(object)
    expected = (expected.dropna() if fill is None else expected.fillna(fill)).value_counts()
    got = value_counts(coded, fill=fill)
    assert list(got.index) == list(expected.index)
    assert list(got.to_numpy()) == list(expected.to_numpy())
    pd.testing.assert_series_equal(value_counts(plain, fill=fill), expected)


def test_sla_targets_and_clock_per_category_match_per_row() -> None:
    frame = frame_from_tickets(varied_tickets())
    plain = {c: frame[c].astype(object) for c in ("priority", "impact")}
    pd.testing.assert_series_equal(
        sla_clock.target_hours(frame["priority"], frame["impact"], SLA),
        sla_clock.target_hours(plain["priority"], plain["impact"], SLA))
    pd.testing.assert_series_equal(sla_clock.respond_hours(frame["priority"], SLA),
                                   sla_clock.respond_hours(plain["priority"], SLA))
    for end in ("resolved_at", "responded_at"):
        coded = sla_clock.elapsed_hours(frame["created"], frame[end], frame["priority"], SLA)
        pd.testing.assert_series_equal(
            coded, sla_clock.elapsed_hours(frame["created"], frame[end], plain["priority"],
                                           SLA))
        assert coded.notna().any()
