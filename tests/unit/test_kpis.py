"""Manager-report KPIs on small, hand-computed ticket sets (reports.kpis, reports.frame)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from incident_ops.config import load_vocabulary, load_yaml
from incident_ops.model import Ticket
from incident_ops.policy.escalation import SlaPolicy
from incident_ops.reports.frame import frame_from_tickets, read_snapshot, write_snapshot
from incident_ops.reports.kpis import NOT_SET, KpiSettings, PeriodKpis, compute_kpis
from incident_ops.reports.periods import Period, last_complete, period_containing

SETTINGS = KpiSettings.from_config(load_vocabulary(), SlaPolicy.from_dict(load_yaml("sla.yaml")),
                                   tz="Asia/Shanghai")
DAY = Period("daily", date(2026, 11, 25))  # Wednesday; Shanghai midnight = 16:00 UTC before
START = DAY.start_utc  # 2026-11-24 16:00 UTC


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def ticket(tid: str, created: datetime, **over: Any) -> Ticket:
    fields: dict[str, Any] = dict(id=tid, subject=f"事件 {tid}", status="new", priority="high",
                                  created=created, updated=created)
    fields.update(over)
    return Ticket(**fields)


def resolved(tid: str, created: datetime, hours: float, **over: Any) -> Ticket:
    done = created + timedelta(hours=hours)
    fields: dict[str, Any] = dict(status="closed", resolved_at=done, completed_at=done,
                                  closed_at=done + timedelta(minutes=10), close_code="solved")
    return ticket(tid, created, **{**fields, **over})


def kpis(tickets: list[Ticket], period: Period = DAY) -> PeriodKpis:
    return compute_kpis(frame_from_tickets(tickets), period, SETTINGS)


def table(k: PeriodKpis, name: str, key: str = "code") -> dict[str, dict[str, Any]]:
    return {str(r[key]): r for r in k.tables[name].to_dict("records")}


def test_an_empty_period_reports_zero_and_no_rates() -> None:
    k = kpis([])
    assert k.is_empty
    assert k.headline["created"] == k.headline["resolved"] == k.headline["closed"] == 0
    assert k.headline["sla_pct"] is None and k.headline["mean_ttr_h"] is None
    assert k.headline["reopen_rate_pct"] is None and k.headline["bounce_rate_pct"] is None
    assert k.tables["volume_priority"].empty and k.tables["urgent"].empty
    assert k.tables["trend"]["created"].sum() == 0 and len(k.tables["trend"]) == 24
    json.dumps(k.to_dict())  # still a valid document


def test_a_period_with_tickets_only_last_period_is_empty_but_shows_the_drop() -> None:
    k = kpis([ticket("1", START - timedelta(hours=3), priority="urgent")])
    assert k.is_empty
    assert k.previous_headline["created"] == 1 and k.delta("created") == -1
    row = table(k, "volume_priority")["urgent"]
    assert (row["created"], row["previous"], row["delta"]) == (0, 1, -1)


def test_midnight_in_shanghai_decides_the_day() -> None:
    tickets = [
        ticket("1", utc(2026, 11, 24, 16, 0)),  # 00:00 on the 25th in Shanghai: in
        ticket("2", utc(2026, 11, 25, 15, 30)),  # 23:30 on the 25th: in
        ticket("3", utc(2026, 11, 25, 16, 10)),  # 00:10 on the 26th: next day
        ticket("4", utc(2026, 11, 24, 15, 59, 59)),  # 23:59:59 on the 24th: previous day
    ]
    k = kpis(tickets)
    assert k.headline["created"] == 2
    assert k.previous_headline["created"] == 1
    trend = k.tables["trend"].set_index("bucket")["created"]
    assert trend["00:00"] == 1 and trend["23:00"] == 1 and trend.sum() == 2


def test_a_weekly_period_runs_monday_to_sunday_in_shanghai() -> None:
    week = period_containing("weekly", date(2026, 11, 25))
    assert (week.first_day, week.last_day, week.label) == (date(2026, 11, 23),
                                                           date(2026, 11, 29), "2026-W48")
    sunday_night = utc(2026, 11, 29, 15, 59)  # Sunday 23:59 in Shanghai
    monday_early = utc(2026, 11, 29, 16, 1)  # next Monday 00:01
    k = kpis([ticket("1", sunday_night), ticket("2", monday_early)], week)
    assert k.headline["created"] == 1
    assert list(k.tables["trend"]["bucket"])[-1] == "2026-11-29"


def test_scheduled_runs_report_the_last_complete_period() -> None:
    run = utc(2026, 11, 25, 23, 0)  # 07:00 on the 26th in Shanghai
    assert last_complete("daily", run).label == "2026-11-25"
    assert last_complete("weekly", utc(2026, 11, 30, 0, 0)).label == "2026-W48"
    assert last_complete("monthly", utc(2026, 11, 30, 17, 0)).label == "2026-11"
    assert last_complete("monthly", utc(2026, 1, 1, 0, 0)).label == "2025-12"


def test_time_to_resolve_and_sla_by_priority_are_hand_computed() -> None:
    t0 = START + timedelta(hours=1)
    tickets = [resolved(str(i), t0, h, priority="high") for i, h in
               enumerate([2, 4, 6, 10], start=1)]  # high: 8 h target
    tickets.append(resolved("9", t0, 3, priority="urgent"))  # urgent: 4 h target
    k = kpis(tickets)
    high = table(k, "resolution_priority")["high"]
    assert high["resolved"] == 4 and high["mean_ttr_h"] == pytest.approx(5.5)
    assert high["p90_ttr_h"] == pytest.approx(8.8)  # linear: 6 + 0.7 * (10 - 6)
    assert (high["met"], high["measured"], high["sla_pct"]) == (3, 4, 75.0)
    assert table(k, "resolution_priority")["urgent"]["sla_pct"] == 100.0
    assert k.headline["sla_pct"] == 80.0 and k.headline["resolved"] == 5
    assert list(k.tables["resolution_priority"]["code"]) == ["urgent", "high"]


def test_medium_tickets_are_measured_in_business_hours_and_major_impact_is_stricter() -> None:
    friday_5pm = utc(2026, 11, 20, 9, 0)  # Friday 17:00 in Shanghai
    monday_10am = utc(2026, 11, 23, 2, 0)  # Monday 10:00: 2 working hours later
    medium = ticket("1", friday_5pm, priority="medium", status="resolved",
                    resolved_at=monday_10am, completed_at=monday_10am)
    day = Period("daily", date(2026, 11, 23))
    k = kpis([medium], day)
    row = table(k, "resolution_priority")["medium"]
    assert row["mean_ttr_h"] == pytest.approx(65.0)  # wall clock, what the user waited
    assert row["sla_pct"] == 100.0  # 2 business hours against 24
    major = resolved("2", START + timedelta(hours=1), 3, priority="urgent", impact="major")
    assert table(kpis([major]), "resolution_priority")["urgent"]["sla_pct"] == 0.0  # 3 h > 2 h


def test_everything_reopened_is_a_100_percent_reopen_rate() -> None:
    t0 = START + timedelta(hours=1)
    originals = [resolved(str(i), t0 - timedelta(days=1), 30, close_code="unsuccessful",
                          automation="100.7.3 confirm.rejected · run r1") for i in (1, 2, 3)]
    reopens = [ticket(str(10 + i), t0 + timedelta(hours=7), status="assigned-l1",
                      subject=f"[重开 Reopened #{i}] 计费异常", idempotency_key=f"reopen:{i}")
               for i in (1, 2, 3)]
    k = kpis(originals + reopens)
    assert k.headline["closed"] == 3 and k.headline["reopened"] == 3
    assert k.headline["reopen_rate_pct"] == 100.0
    assert k.headline["reopen_tickets"] == 3
    outcomes = table(k, "closure_outcomes")
    assert outcomes["reopened"]["closed"] == 3 and outcomes["auto"]["closed"] == 0
    assert sorted(k.tables["reopened"]["id"]) == ["1", "2", "3"]


def test_closure_outcomes_follow_the_closure_pipelines_stamps() -> None:
    t0 = START + timedelta(hours=1)
    stamps = {"1": "100.7.1 close.auto-source · run a", "2": "100.7.1 close.confirmed · run a",
              "3": "100.7.4 close.handled-by-support · run a",
              "4": "100.7.1 close.duplicate-cascade · run a", "5": None}
    tickets = [resolved(tid, t0, 1, automation=stamp) for tid, stamp in stamps.items()]
    tickets.append(resolved("6", t0, 1, confirmation="confirmed"))  # closed by hand, confirmed
    counts = {code: row["closed"] for code, row in table(kpis(tickets),
                                                        "closure_outcomes").items()}
    assert counts == {"auto": 1, "confirmed": 2, "no_answer": 0, "support": 1, "cascade": 1,
                      "reopened": 0, "manual": 1}


def test_tickets_missing_optional_fields_count_as_not_set() -> None:
    bare = Ticket(id="1", subject="", status="resolved", priority="low",
                  created=START + timedelta(hours=1), updated=START + timedelta(hours=2),
                  resolved_at=START + timedelta(hours=2))
    k = kpis([bare])
    for name in ("volume_system", "volume_source", "volume_category"):
        assert table(k, name)[NOT_SET]["created"] == 1
    assert k.headline["resolved"] == 1 and k.headline["mean_ttr_h"] == pytest.approx(1.0)
    assert k.tables["top_config_items"].empty and k.tables["duplicates"].empty
    assert k.headline["escalated"] == 0 and k.headline["bounced"] == 0


def test_unknown_codes_are_kept_and_listed_after_the_known_ones() -> None:
    t0 = START + timedelta(hours=1)
    k = kpis([ticket("1", t0, system="mainframe"), ticket("2", t0, system="crm")])
    assert list(k.tables["volume_system"]["code"]) == ["crm", "mainframe"]


def test_a_completion_time_before_creation_is_flagged_and_the_desks_time_measured() -> None:
    t0 = START + timedelta(hours=5)
    bad = ticket("1", t0, status="resolved", completed_at=t0 - timedelta(hours=2),
                 resolved_at=t0 + timedelta(hours=1))
    k = kpis([bad])
    assert k.headline["resolved"] == 1 and k.headline["bad_resolution_time"] == 1
    assert k.headline["mean_ttr_h"] == 1.0 and k.headline["sla_measured"] == 1


def test_a_resolution_before_creation_is_flagged_not_averaged() -> None:
    t0 = START + timedelta(hours=5)
    bad = ticket("1", t0, status="resolved", resolved_at=t0 - timedelta(hours=2))
    k = kpis([bad])
    assert k.headline["resolved"] == 1 and k.headline["bad_resolution_time"] == 1
    assert k.headline["mean_ttr_h"] is None and k.headline["sla_measured"] == 0


def test_the_desks_resolution_time_wins_over_the_recorded_completion_time() -> None:
    t0 = START + timedelta(hours=1)
    t = ticket("1", t0, status="closed", completed_at=t0 + timedelta(hours=1),
               resolved_at=t0 + timedelta(hours=3), closed_at=t0 + timedelta(hours=4))
    assert kpis([t]).headline["mean_ttr_h"] == 3.0
    # Without the desk's time (a desk that gave none) the record stands in.
    assert kpis([t.with_changes(resolved_at=None)]).headline["mean_ttr_h"] == 1.0


def test_response_is_measured_on_new_tickets_against_the_priority_target() -> None:
    t0 = START + timedelta(hours=10)  # 10:00 in Shanghai, a Wednesday
    tickets = [
        ticket("1", t0, priority="high", responded_at=t0 + timedelta(minutes=30)),  # 1 h: met
        ticket("2", t0, priority="high", responded_at=t0 + timedelta(hours=2)),  # missed
        # medium: 4 business hours; 10:00 -> 17:00 is 7 h: missed
        ticket("3", t0, priority="medium", responded_at=t0 + timedelta(hours=7)),
        # low: 8 business hours; 10:00 -> 16:00 is 6: met
        ticket("4", t0, priority="low", responded_at=t0 + timedelta(hours=6)),
        # never answered: urgent (15 min) long past at the day's end -> missed
        ticket("5", t0, priority="urgent"),
        # never answered, low, created 17:00: 1 business hour by the end of the day -> open
        ticket("6", t0 + timedelta(hours=7), priority="low"),
        # a duplicate is answered through its master: not measured
        ticket("7", t0, priority="high", duplicate_of="1"),
        # created the day before: not this period's
        ticket("8", t0 - timedelta(days=1), priority="high", responded_at=t0),
    ]
    k = kpis(tickets)
    assert (k.headline["response_measured"], k.headline["response_met"]) == (5, 2)
    assert k.headline["response_pct"] == 40.0
    rows = table(k, "response_priority")
    assert (rows["high"]["tickets"], rows["high"]["measured"], rows["high"]["met"]) == (2, 2, 1)
    assert rows["high"]["mean_response_h"] == pytest.approx(1.25)
    assert rows["high"]["respond_target_h"] == 1.0
    assert (rows["low"]["tickets"], rows["low"]["measured"], rows["low"]["met"]) == (2, 1, 1)
    assert rows["urgent"]["response_pct"] == 0.0
    assert rows["high"]["previous_response_pct"] == 0.0  # ticket 8, answered after 25 h


def test_duplicates_are_counted_per_master() -> None:
    t0 = START + timedelta(hours=1)
    tickets = [ticket("100", t0, subject="CRM 登录失败"),
               *[ticket(str(i), t0, duplicate_of="100") for i in range(101, 104)],
               ticket("200", t0), ticket("201", t0, duplicate_of="200")]
    k = kpis(tickets)
    assert k.headline["duplicates"] == 4 and k.headline["duplicate_masters"] == 2
    first = k.tables["duplicates"].iloc[0]
    assert (first["master_id"], first["duplicates"], first["subject"]) == ("100", 3,
                                                                           "CRM 登录失败")


def test_incomplete_resolutions_are_counted_by_handler() -> None:
    t0 = START + timedelta(hours=1)
    tickets = [
        ticket("1", t0, status="assigned-l1", handler="li.na",
               automation_keys=("bounce:abc",), automation="100.6 completeness · run a"),
        ticket("2", t0, status="assigned-l2", handler="li.na",
               automation="100.6 completeness · run b"),  # stamp only
        resolved("3", t0, 2, handler="li.na"),
        resolved("4", t0, 2, handler="liu.yang"),
    ]
    k = kpis(tickets)
    assert k.headline["bounced"] == 2 and k.headline["bounce_rate_pct"] == 50.0
    li = table(k, "bounces_by_handler", "handler")["li.na"]
    assert (li["handled"], li["bounced"], li["rate_pct"]) == (3, 2, 66.7)
    assert "liu.yang" not in table(k, "bounces_by_handler", "handler")


def test_escalations_count_tickets_per_rung_in_ladder_order() -> None:
    t0 = START + timedelta(hours=1)
    k = kpis([ticket("1", t0, escalation=("at-risk", "breached")),
              ticket("2", t0, escalation=("at-risk",)), ticket("3", t0)])
    rungs = table(k, "escalations")
    assert k.headline["escalated"] == 2
    assert (rungs["at-risk"]["tickets"], rungs["breached"]["tickets"]) == (2, 1)
    assert list(k.tables["escalations"]["code"])[:2] == ["at-risk", "breached"]


def test_urgent_major_and_fault_tables() -> None:
    t0 = START + timedelta(hours=1)
    tickets = [
        ticket("1", t0, priority="urgent", impact="major", category="fault",
               config_item="BIL-DB-RAC02", faulty_vendor="亚信"),
        ticket("2", t0, priority="urgent", category="fault", config_item="BIL-DB-RAC02",
               faulty_vendor="华为"),
        ticket("3", t0, category="alarm", config_item="CRM-APP-01"),
        ticket("4", t0, category="request", config_item="CRM-APP-01"),
    ]
    k = kpis(tickets)
    assert (k.headline["urgent"], k.headline["major"]) == (2, 1)
    assert list(k.tables["major"]["id"]) == ["1"]
    cis = table(k, "top_config_items")
    assert cis["BIL-DB-RAC02"]["count"] == 2 and cis["CRM-APP-01"]["count"] == 1
    assert set(table(k, "top_vendors")) == {"亚信", "华为"}


def test_kpis_survive_json_and_the_snapshot_survives_disk(tmp_path: Path) -> None:
    t0 = START + timedelta(hours=1)
    tickets = [resolved("1", t0, 2, subject='<script>alert("x")</script>, "quoted"\nline',
                        config_item="NA", escalation=("at-risk",),
                        automation_keys=("bounce:1",)),
               ticket("2", t0, system=None)]
    frame = frame_from_tickets(tickets)
    back = read_snapshot(write_snapshot(frame, tmp_path / "tickets.csv.gz"))
    pd.testing.assert_frame_equal(back, frame)
    k = compute_kpis(back, DAY, SETTINGS)
    again = PeriodKpis.from_dict(json.loads(json.dumps(k.to_dict())))
    assert again.headline == k.headline and again.period == DAY
    assert again.tables["volume_priority"].to_dict("records") == \
        k.tables["volume_priority"].to_dict("records")


HOSTILE_TEXTS = ["a\rb", "a\r\nb", "\x00nul", "\u202eRTL\u202c \u200f", "🔥🚨",
                 "<script>x</script>", '"q", \'s\'', "Bcc: x@y\r\nSubject: z", "tab\there",
                 "NA", "null", " lead",
                 "\ufffd", "长" * 30_000, "\\N", ",", "\n"]


@pytest.mark.parametrize("where", ["subject", "config_item", "faulty_vendor"])
def test_the_snapshot_reads_back_any_text_exactly(tmp_path: Path, where: str) -> None:
    """Text columns and code columns alike: a lone CR, a NUL, marks, 30 000 characters."""
    t0 = START + timedelta(hours=1)
    tickets = [ticket(str(i), t0, **{where: text}) for i, text in enumerate(HOSTILE_TEXTS, 1)]
    frame = frame_from_tickets(tickets)
    back = read_snapshot(write_snapshot(frame, tmp_path / "tickets.csv.gz"))
    assert len(back) == len(HOSTILE_TEXTS)
    assert list(back[where].astype(str)) == HOSTILE_TEXTS
    pd.testing.assert_frame_equal(back, frame)


def test_outcomes_match_the_stamps_rule_id_and_the_reopen_key_not_their_wording() -> None:
    """reports.closure_outcomes reads policy.rules' ids: a subject that looks like a reopen,
    or a run id that spells a rule, counts for nothing; the key and the stamp's rule do."""
    t0 = START + timedelta(hours=1)
    closed = [resolved("1", t0, 1, automation="100.7.1 close.confirmed · run close.auto-source"),
              resolved("2", t0, 1, automation="100.7.4 close.handled-by-support · run x")]
    copies = [ticket("3", t0, subject="[重开 Reopened #9] typed by hand"),
              ticket("4", t0, subject="计费异常", idempotency_key="reopen:abc")]
    k = kpis(closed + copies)
    counts = {code: row["closed"] for code, row in table(k, "closure_outcomes").items()}
    assert (counts["confirmed"], counts["support"], counts["auto"]) == (1, 1, 0)
    assert k.headline["reopen_tickets"] == 1
