"""On-call alerting decisions (pure): streaks, which missed deadline speaks for an outage,
silences, and what the alert mails say."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from incident_ops.notify.oncall import (
    OnCallState,
    RunFacts,
    Silence,
    TaskLink,
    alert_key,
    deadline_alert,
    deadline_reason,
    failure_alert,
    record_failure,
    record_success,
    recovery_alert,
    summary_from_xcom,
)

T0 = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def failing(*runs: str) -> OnCallState:
    state = OnCallState()
    for i, run in enumerate(runs):
        state = record_failure(state, run, minutes(i), ["plan"])
    return state


def test_failed_runs_in_a_row_are_one_streak_counted_once_per_run():
    state = failing("r1", "r2", "r2", "r3")
    assert state.streak is not None
    assert (state.streak.first_run, state.streak.runs, state.streak.last_run) == ("r1", 3, "r3")
    assert state.streak.since == minutes(0)


def test_a_success_ends_the_streak_and_returns_it():
    state, ended = record_success(failing("r1", "r2"), minutes(5))
    assert ended is not None and ended.runs == 2
    assert state.streak is None and state.recovered_at == minutes(5)
    state, ended = record_success(state, minutes(6))
    assert ended is None  # nothing to recover from


def test_the_first_alert_of_a_streak_becomes_its_thread():
    state = failing("r1").with_sent(alert_key("d", "r1", "failed"), "<a@x>")
    state = record_failure(state, "r2", minutes(1)).with_sent("k2", "<b@x>")
    assert state.streak is not None and state.streak.thread == "<a@x>"
    assert state.was_sent(alert_key("d", "r1", "failed"))
    assert OnCallState.from_dict(state.to_dict()) == state


@pytest.mark.parametrize("state, run, run_state, queued, expected", [
    (OnCallState(), "r1", "success", minutes(0), None),
    (failing("r1", "r2"), "r1", "failed", minutes(0), "failed, and no run has succeeded since"),
    (failing("r1", "r2"), "r2", "failed", minutes(1), None),  # r1 speaks for the outage
    (OnCallState(), "r1", "running", minutes(0), "still not finished"),  # it hangs
    (failing("r1"), "r2", "running", minutes(1), None),  # a hung run in a known outage
    # the failure callback has not run yet: the deadline alerts on its own
    (OnCallState(), "r1", "failed", minutes(0), "failed, and no run has succeeded since"),
    # ... unless a later run already succeeded
    (OnCallState(recovered_at=minutes(3)), "r1", "failed", minutes(0), None),
    (OnCallState(recovered_at=minutes(-60)), "r1", "failed", minutes(0),
     "failed, and no run has succeeded since"),
])
def test_one_missed_deadline_speaks_for_an_outage(state, run, run_state, queued, expected):
    assert deadline_reason(state, run, run_state, queued) == expected


def test_a_later_streak_does_not_make_an_earlier_run_alert():
    state, _ = record_success(failing("r1"), minutes(2))
    state = record_failure(state, "r5", minutes(4))
    assert deadline_reason(state, "r1", "failed", minutes(0)) is None


def test_a_silence_covers_its_dags_until_it_ends():
    silence = Silence.parse({"until": "2026-12-05T18:00:00+08:00", "dags": ["urgent_incidents"]})
    assert silence.covers("urgent_incidents", minutes(0))
    assert not silence.covers("incident_closure", minutes(0))
    assert not silence.covers("urgent_incidents", minutes(120))  # 18:00+08:00 is 10:00 UTC
    assert Silence.parse({"until": "2026-12-05T18:00:00+08:00"}).covers("anything", T0)


@pytest.mark.parametrize("data, message", [
    ({"until": "2026-12-05T18:00"}, "no time zone"),
    ({"dags": []}, "expected"),
    ("tomorrow", "expected"),
])
def test_a_silence_that_cannot_be_read_says_why(data, message):
    with pytest.raises(ValueError, match=message):
        Silence.parse(data)


def test_the_summary_counts_outcomes_undelivered_messages_and_findings():
    planned = {"plan": {"actions": [{"kind": "notify"}, {"kind": "notify"}],
                        "findings": [{"ticket_id": "7"}]}}
    applied = {"outcomes": [{"kind": "notify", "outcome": "done"},
                            {"kind": "notify", "outcome": "undelivered"}],
               "undelivered": ["sms to 138 (#7)", "sms to 138 (#7)"]}
    assert summary_from_xcom(planned, applied) == (
        "notify: 1 done, 1 undelivered", "undelivered messages: 1 (sms to 138 (#7))",
        "findings (bad input): 1")
    assert summary_from_xcom(planned, None) == ("notify: 2 planned, not applied",
                                                "findings (bad input): 1")
    assert summary_from_xcom(None, None) == ()


FACTS = RunFacts(dag_id="urgent_incidents", run_id="scheduled__2026-12-05T08:05:00+00:00",
                 run_url="http://af/dags/urgent_incidents/runs/r2",
                 failed_tasks=(TaskLink("plan", "http://af/dags/urgent_incidents/runs/r2/tasks/plan"),),
                 summary=("findings (bad input): 0",))


def test_the_failure_mail_names_the_run_the_task_and_the_streak():
    state = failing("r1", "r2").with_sent("k", "<first@x>")
    assert state.streak is not None
    mail = failure_alert(FACTS, state.streak, ["oncall@x"], now=minutes(30), silence_hint="h")
    assert mail.subject == ("[incident-ops] 失败 FAILED: urgent_incidents (plan), 2nd failed run "
                            "in a row")
    assert mail.key == alert_key("urgent_incidents", FACTS.run_id, "failed")
    assert mail.references == ("<first@x>",)
    assert "Failed task plan: http://af/dags/urgent_incidents/runs/r2/tasks/plan" in mail.text
    assert "Failing since 2026-12-05 08:00 UTC (30 min), 2 failed runs." in mail.text
    assert 'href="http://af/dags/urgent_incidents/runs/r2/tasks/plan"' in mail.html


def test_deadline_and_recovery_mails():
    state = failing("r1", "r2", "r3")
    assert state.streak is not None
    late = deadline_alert(FACTS, state.streak, ["oncall@x"], minutes=10, why="failed",
                          now=minutes(75), silence_hint="h")
    assert late.subject == ("[incident-ops] 超时 DEADLINE: urgent_incidents has not succeeded "
                            "for 10 min")
    assert "1 h 15 min" in late.text
    back = recovery_alert(FACTS, state.streak, ["oncall@x"], now=minutes(75), silence_hint="h")
    assert back.subject == ("[incident-ops] 恢复 RECOVERED: urgent_incidents succeeded after "
                            "3 failed runs")
    assert back.key.endswith(":recovered")


def test_alert_text_is_escaped_in_html():
    facts = RunFacts(dag_id="d", run_id="<script>", run_url="http://af/x")
    mail = failure_alert(facts, failing("<script>").streak, ["o@x"],  # type: ignore[arg-type]
                         now=minutes(1), silence_hint="h")
    assert "<script>" not in mail.html and "&lt;script&gt;" in mail.html


def test_a_plan_page_url_names_only_a_plan_page_of_the_store():
    from incident_ops.airflow.web.plan_pages import resolve_page

    assert resolve_page("incident_closure", "2026-12-05", "run_1.html") == \
        "incident_closure/2026-12-05/run_1.html"
    for args in [("..", "..", "secret.html"), ("incident_closure", "..", "secret.html"),
                 ("incident_closure", "2026-12-05", "run_1.py"),
                 ("incident_closure", "2026-12-05", "manifest.json.gz"),
                 ("incident_closure", "2026-12-05/..", "run_1.html")]:
        assert resolve_page(*args) is None, args


def test_the_summary_names_the_tickets_whose_actions_failed():
    planned = {"plan": {"actions": [{"kind": "close"}, {"kind": "ask_confirmation"}]}}
    applied = {"outcomes": [{"kind": "close", "outcome": "done", "ticket_id": "3"},
                            {"kind": "ask_confirmation", "outcome": "failed", "ticket_id": "9",
                             "message": "HTTP 503: the desk is down"}],
               "replayed": [], "undelivered": []}
    assert "failed actions: 1 (#9 ask_confirmation: HTTP 503: the desk is down)" in \
        summary_from_xcom(planned, applied)
