"""One emergency per incident (issue 24): the rule every emergency run applies to the
claims of the others, and the check the API server makes of a trigger's body."""

from __future__ import annotations

import itertools

from incident_ops.policy.emergency_overlap import (
    CHECKING,
    REFUSED,
    STARTED,
    RunClaim,
    in_the_way,
    reason_problem,
    refusal,
)


def claim(run_id: str, at: str, *, ticket: str = "75", status: str = CHECKING,
          emergency: str | None = None, **kw: object) -> RunClaim:
    return RunClaim(run_id=run_id, ticket_id=ticket, emergency_id=emergency or run_id,
                 run_after=f"2026-05-04T08:00:{at}.000000", status=status, **kw)  # type: ignore[arg-type]


def test_a_running_emergency_of_the_incident_is_in_the_way_of_a_new_one():
    first = claim("a", "01", status=STARTED)
    assert in_the_way(claim("b", "09"), [first]) == [first]


def test_another_incidents_emergency_a_dry_run_or_a_refused_run_is_not():
    me = claim("b", "09")
    assert in_the_way(me, [claim("a", "01", ticket="76", status=STARTED),
                           claim("c", "01", status=STARTED, dry_run=True),
                           claim("d", "01", status=REFUSED)]) == []
    assert in_the_way(claim("e", "09", dry_run=True), [claim("a", "01", status=STARTED)]) == []


def test_a_continuation_is_the_same_emergency_as_the_run_it_continues():
    first = claim("a", "01", status=STARTED)
    assert in_the_way(claim("a.from-round-4", "30", emergency="a"), [first]) == []


def test_of_two_runs_claiming_at_once_exactly_one_goes_on_whatever_each_has_seen():
    # Each claims (checking) before it reads the other; the later reader sees the other's
    # claim, the earlier may have seen it or not yet. In every interleaving one goes on.
    a, b = claim("a", "01"), claim("b", "02")
    for a_sees_b, b_sees_a in itertools.product([True, False], repeat=2):
        if not (a_sees_b or b_sees_a):
            continue  # impossible: the later reader claimed after the earlier one did
        a_goes = not in_the_way(a, [b] if a_sees_b else [])
        a_status = STARTED if a_goes else REFUSED
        b_goes = not in_the_way(b, [claim("a", "01", status=a_status)] if b_sees_a else [])
        if b_goes and b_sees_a is False:
            # b read first and went on; a read later and must see b started
            a_goes = not in_the_way(a, [claim("b", "02", status=STARTED)])
        assert a_goes != b_goes, (a_sees_b, b_sees_a)


def test_start_anyway_needs_a_reason_and_the_refusal_says_how():
    assert reason_problem({"start_anyway": True}) is not None
    assert reason_problem({"start_anyway": True, "start_anyway_reason": "  "}) is not None
    assert reason_problem({"start_anyway": True, "start_anyway_reason": "计费另一故障"}) is None
    assert reason_problem({}) is None
    text = refusal("75", [("manual__1", "li.na", "http://af/dags/emergency_response/runs/m1")])
    assert "#75" in text and "manual__1" in text and "li.na" in text
    assert "http://af/dags/emergency_response/runs/m1" in text and "start_anyway_reason" in text
