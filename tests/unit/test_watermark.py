"""The watermark: where the next incremental read starts (engine/watermark.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from incident_ops.engine import ActionOutcome
from incident_ops.engine.watermark import Watermark, next_watermark, read_since

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
SKEW = timedelta(seconds=60)


def outcome(ticket_id: str, result: str) -> ActionOutcome:
    return ActionOutcome("k" + ticket_id, "close", ticket_id, "100.7.1", "r", result)


def test_a_quiet_run_moves_it_to_the_fetch_start_less_the_skew():
    mark = next_watermark(None, T0, 500, {}, [], SKEW)
    assert mark == Watermark(T0 - SKEW, 500)


def test_it_never_moves_backwards():
    previous = Watermark(T0, 400)
    assert next_watermark(previous, T0 - timedelta(minutes=5), 500, {}, [], SKEW).at == T0


def test_a_ticket_whose_action_did_not_happen_holds_it_back_to_that_ticket():
    updated = {"1": T0 - timedelta(minutes=30), "2": T0 - timedelta(minutes=10)}
    for result in ("failed", "stale", "waiting", "deferred"):
        mark = next_watermark(Watermark(T0 - timedelta(hours=1), 400), T0, 500, updated,
                              [outcome("1", result), outcome("2", "done")], SKEW)
        assert mark.at == updated["1"], result


def test_done_skipped_and_owed_messages_do_not_hold_it_back():
    updated = {"1": T0 - timedelta(minutes=30)}
    for result in ("done", "skipped", "undelivered"):  # owed messages live in the outbox
        mark = next_watermark(None, T0, 500, updated, [outcome("1", result)], SKEW)
        assert mark.at == T0 - SKEW, result


def test_a_reseeded_desk_is_read_whole():
    """The first wave's demo bug: a fresh desk under an old watermark read nothing (its
    seeded tickets were all updated "before" it): 0 closes instead of 188."""
    stored = Watermark(T0, desk_mark=120_000)
    assert read_since(stored, desk_mark=4_000) is None
    assert next_watermark(stored, T0 + timedelta(hours=1), 4_000, {}, [], SKEW) == \
        Watermark(T0 + timedelta(hours=1) - SKEW, 4_000)


def test_the_same_desk_reads_from_the_mark():
    assert read_since(Watermark(T0, 400), 500) == T0


def test_a_watermark_of_the_first_versions_is_still_read():
    assert Watermark.from_dict("2026-12-01T08:00:00+00:00") == Watermark(T0, None)
    assert read_since(Watermark(T0, None), 10) == T0
