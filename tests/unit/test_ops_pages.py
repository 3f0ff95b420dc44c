"""What an operator reads about the automation: the Incident ops view's pages (rendered as the
plugin serves them), the plan page and the run summary. Each test reads the text a person
sees, made from what the engine really recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from incident_ops.desk.memory import MemoryDesk
from incident_ops.engine import Applier, MemoryOutbox
from incident_ops.model import Ticket
from incident_ops.policy.plan import NOTIFY, Action, Plan, action_key
from incident_ops.reports.plan_report import write_plan_report
from incident_ops.reports.trail import ticket_trail

RUN_AT = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)  # the emergency run's time: 10:00 in Shanghai


class Clock:
    def __init__(self) -> None:
        self.now = RUN_AT

    def __call__(self) -> datetime:
        return self.now


class Nobody:
    def send_email(self, email: Any) -> None:
        raise AssertionError("no message in these plans")

    def send_sms(self, sms: Any) -> None:
        raise AssertionError("no message in these plans")


@pytest.fixture
def env(monkeypatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("INCIDENT_OPS_REPORTS_DIR", str(tmp_path))
    monkeypatch.setenv("INCIDENT_OPS_TIMEZONE", "Asia/Shanghai")
    return tmp_path


def page(template: str, **values: Any) -> str:
    from incident_ops.airflow.bootstrap import WebServices
    from incident_ops.airflow.web.ops_view import render

    web = WebServices()
    web.desk_url = lambda: None  # type: ignore[method-assign]
    return render(template, web, **values)


def note(ticket_id: str, step: str) -> Action:
    return Action(kind=NOTIFY, ticket_id=ticket_id, step=step, rule=f"emergency.{step}",
                  key=action_key("note", ticket_id, step), reason=f"step {step}",
                  comment=f"[{step}] noted")


def test_the_trail_stamps_each_action_with_when_it_was_done_in_the_deployments_zone(env):
    desk = MemoryDesk()
    incident = desk.add(Ticket(id="", subject="计费系统故障", status="assigned-l1",
                               priority="urgent", created=RUN_AT, updated=RUN_AT))
    clock = Clock()
    # Three steps of one emergency run, 5, 12 and 25 minutes into it. Each step's plan page
    # is written with the run's time (the emergency's steps share it).
    for minutes, step in ((5, "101.1"), (12, "101.2"), (25, "101.3")):
        clock.now = RUN_AT + timedelta(minutes=minutes, seconds=7)
        plan = Plan(pipeline="emergency_response", run_id="manual__e1",
                    actions=[note(incident.id, step)])
        applied = Applier(desk, Nobody(), "manual__e1", outbox=MemoryOutbox(),
                          clock=clock).apply(plan)
        assert [o.outcome for o in applied.outcomes] == ["done"]
        write_plan_report(plan, applied.outcomes, env, now=RUN_AT, dry_run=False,
                          stem_suffix=f".{step}")

    lines = ticket_trail(env, incident.id)
    text = page("ops_ticket.html.j2", ticket_id=incident.id, lines=lines, sending=[], owed=[])
    assert "done at (Asia/Shanghai)" in text
    for done in ("10:05:07 +08:00", "10:12:07 +08:00", "10:25:07 +08:00"):
        assert f"2026-12-05 {done}" in text
    # Oldest first, by when they were done.
    assert text.index("10:05:07") < text.index("10:12:07") < text.index("10:25:07")
    assert "planned 2026-12-05 10:00:00 +08:00" in text  # the plan's time, named as such


def outbox_entry(key: str, ticket_id: str, attempts: int, last_error: str) -> dict[str, Any]:
    return {"scope": "incident_closure", "key": key, "ticket_id": ticket_id, "step": "100.7.2",
            "run_id": "scheduled__1", "queued_at": "2026-12-05T02:00:00+00:00",
            "attempts": attempts, "last_error": last_error}


def test_messages_in_flight_are_being_sent_and_only_a_failed_send_is_owed(env):
    from incident_ops.airflow.web.ops_view import split_outbox

    entries = [outbox_entry("ask:1", "41", 0, ""),  # queued by the apply running now
               outbox_entry("ask:2", "42", 0, ""),
               outbox_entry("reopen:3", "43", 2, "451 4.3.0 try again later")]
    text = page("ops_view.html.j2", runs={}, codes=[], questions=[], **split_outbox(entries))
    assert "Undelivered" not in text
    sending = text[text.index("Being sent (2)"):text.index("Owed, will be retried (1)")]
    owed = text[text.index("Owed, will be retried (1)"):]
    assert "#41" in sending and "#42" in sending and "#43" not in sending
    assert "#43" in owed and "451 4.3.0 try again later" in owed and "#41" not in owed
    assert "2026-12-05 10:00:00 +08:00" in text  # queued, in the deployment's zone


def test_the_plan_page_and_the_summary_say_what_dropped_and_skipped_mean(env):
    from incident_ops.airflow.tasks.pipeline import summary_lines
    from incident_ops.engine.outcomes import ActionOutcome

    def outcome(n: int, result: str) -> ActionOutcome:
        return ActionOutcome(f"ask:{n}", "ask_confirmation", str(n), "100.7.2", "confirm.ask",
                             result, at="2026-12-05T02:01:00+00:00")

    outcomes = [outcome(1, "done"), *(outcome(n, "dropped") for n in range(2, 46)),
                *(outcome(n, "skipped") for n in range(46, 77))]
    lines = summary_lines(outcomes)
    assert lines[0].split(None, 1)[1] == (
        "1 done, 44 dropped (changed since they were decided: left for the next run), "
        "31 skipped (done before: not repeated)")

    plan = Plan(pipeline="incident_closure", run_id="r1", actions=[
        Action(kind="ask_confirmation", ticket_id=o.ticket_id, step="100.7.2",
               rule="confirm.ask", key=o.key, reason="resolved 3 days ago")
        for o in outcomes])
    paths = write_plan_report(plan, outcomes, env, now=RUN_AT, dry_run=False,
                              undelivered=["mail 'confirmation_request' to u@x.cn: 451"])
    html = (env / paths["html"]).read_text(encoding="utf-8")
    assert "What the outcomes mean" in html
    assert "dropped — 不再适用 / no longer applies:" in html
    assert "An earlier run decided it but never wrote it, and the ticket changed since" in html
    assert "skipped — 已做过 / already done:" in html
    assert "stale —" not in html  # only the outcomes on the page are explained
    assert "Messages not delivered" not in html
    assert "Messages owed, will be retried (1)" in html
