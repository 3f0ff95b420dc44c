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


# ------------------------------------------------ the run's own check (airflow/emergency/guard)
class Runs:
    """The metadata the Task SDK shows a ``validate`` task: which emergency runs are running,
    and the claims they pushed (one store shared by every run's task)."""

    def __init__(self, *run_ids: str, validate: str | None = "queued") -> None:
        self.running = list(run_ids)
        self.claims: dict[str, dict] = {}
        self.validate = validate  # the state of a validate that has not claimed yet

    def ti(self, run_id: str) -> object:
        runs = self

        class TI:
            def xcom_push(self, key: str, value: dict) -> None:
                runs.claims[run_id] = value

            def xcom_pull(self, *, run_id: str, **_: object) -> dict | None:
                return runs.claims.get(run_id)

            def get_dr_count(self, **_: object) -> int:
                return len(runs.running)

            def get_task_states(self, **_: object) -> dict[str, dict[str, str | None]]:
                return {r: {"aftermath.announce_closed": None,
                            "validate": "running" if r in runs.claims else runs.validate}
                        for r in runs.running}

            def get_dagrun_state(self, **_: object) -> str:
                return "running"

        return TI()

    def context(self, run_id: str, triggered: str) -> dict:
        from datetime import datetime
        from types import SimpleNamespace

        run = SimpleNamespace(run_id=run_id, run_after=datetime.fromisoformat(triggered),
                              start_date=None, triggering_user_name="ops")
        return {"dag_run": run, "ti": self.ti(run_id),
                "params": {"ticket_id": "75", "dry_run": False, "start_anyway": False}}


def test_the_run_triggered_first_goes_on_when_the_later_one_checks_first():
    """A busy scheduler starts the later run's ``validate`` first: it waits for the earlier
    run to claim, and is the one refused (before the fix the earlier run was refused)."""
    from airflow.sdk.exceptions import AirflowFailException

    from incident_ops.airflow.emergency.guard import claim_incident

    runs = Runs("first", "second")
    first = runs.context("first", "2026-12-08T01:58:33+00:00")
    second = runs.context("second", "2026-12-08T01:58:39+00:00")
    outcomes: dict[str, str] = {}

    def check(name: str, context: dict, **kw: object) -> None:
        try:
            claim_incident(context, **kw)
            outcomes[name] = "went on"
        except AirflowFailException:
            outcomes[name] = "refused"

    def first_validate_starts(_: float) -> None:  # while the later run waits
        if "first" not in outcomes:
            check("first", first)

    check("second", second, sleep=first_validate_starts)
    if "first" not in outcomes:
        check("first", first)
    assert outcomes == {"first": "went on", "second": "refused"}
    assert runs.claims["first"]["status"] == STARTED
    assert runs.claims["second"]["status"] == REFUSED


def test_a_run_that_never_claims_is_waited_for_a_bounded_time_only():
    from incident_ops.airflow.emergency import guard

    runs = Runs("stuck", "me")
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    assert guard.claim_incident(runs.context("me", "2026-12-08T02:00:00+00:00"),
                                sleep=sleep, clock=lambda: now[0]) == []
    assert runs.claims["me"]["status"] == STARTED
    assert sum(slept) >= guard.UNCLAIMED_WAIT_S and sum(slept) <= guard.UNCLAIMED_WAIT_S + 5


def test_a_run_whose_validate_is_not_scheduled_is_not_waited_for():
    """A run left running with its ``validate`` never scheduled (a continuation created but
    not started): nothing to wait for, the check decides at once."""
    from incident_ops.airflow.emergency import guard

    runs = Runs("idle", "me", validate=None)

    def no_sleep(_: float) -> None:
        raise AssertionError("waited for a run that is not about to claim")

    assert guard.claim_incident(runs.context("me", "2026-12-08T02:00:00+00:00"),
                                sleep=no_sleep) == []
    assert runs.claims["me"]["status"] == STARTED
