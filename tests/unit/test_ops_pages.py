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
    text = page("ops_ticket.html.j2", ticket_id=incident.id, lines=lines, owed=[])
    assert "done at (Asia/Shanghai)" in text
    for done in ("10:05:07 +08:00", "10:12:07 +08:00", "10:25:07 +08:00"):
        assert f"2026-12-05 {done}" in text
    # Oldest first, by when they were done.
    assert text.index("10:05:07") < text.index("10:12:07") < text.index("10:25:07")
    assert "planned 2026-12-05 10:00:00 +08:00" in text  # the plan's time, named as such
