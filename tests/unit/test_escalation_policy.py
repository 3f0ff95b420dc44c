"""100.8 escalation ladder, business hours and 100.5 urgent notification, over time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from factories import CONTACTS, VOCAB
from hypothesis import given, settings
from hypothesis import strategies as st

from incident_ops.config import load_yaml
from incident_ops.model import Ticket
from incident_ops.policy.calendar import Calendar
from incident_ops.policy.escalation import SlaPolicy, decide_escalation, due_times
from incident_ops.policy.plan import ESCALATE
from incident_ops.policy.urgent import decide_urgent

SLA = SlaPolicy.from_dict(load_yaml("sla.yaml"))
T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # Monday 09:00 in Shanghai
LADDER = [r.name for r in SLA.ladder]


def open_ticket(ticket_id="1", **over) -> Ticket:
    base = dict(id=ticket_id, subject="计费批价延迟", status="assigned-l1", priority="high",
                created=T0, updated=T0, system="billing", impact="medium", handler="zhang.wei",
                handler_tier="l1", version="v1")
    base.update(over)
    return Ticket(**base)


def run_ladder(ticket: Ticket, times: list[datetime]) -> tuple[Ticket, list[list[str]]]:
    """Run the monitor at each time, writing back what it decided, as the desk would."""
    fired_per_run = []
    for now in times:
        plan = decide_escalation([ticket], SLA, VOCAB, CONTACTS, now, "r")
        fired = []
        for action in plan.actions:
            fields = action.fields
            new = tuple(fields.get("escalation", ticket.escalation))
            fired = [r for r in new if r not in ticket.escalation]
            ticket = ticket.with_changes(escalation=new,
                                         escalation_due=fields.get("escalation_due"))
        fired_per_run.append(fired)
    return ticket, fired_per_run


def test_high_ticket_climbs_rung_by_rung_as_time_passes():
    hours = [1, 6.5, 8.5, 10.5, 12.5, 30]
    ticket, fired = run_ladder(open_ticket(), [T0 + timedelta(hours=h) for h in hours])
    assert fired == [[], ["at-risk"], ["breached"], ["convene"], ["management"], []]
    assert ticket.escalation == tuple(LADDER)
    assert ticket.escalation_due is None


def test_the_ticket_carries_its_next_due_time():
    plan = decide_escalation([open_ticket()], SLA, VOCAB, CONTACTS, T0, "r")
    (action,) = plan.actions
    assert action.fields == {"escalation_due": T0 + timedelta(hours=6)}
    settled = open_ticket(escalation_due=T0 + timedelta(hours=6))
    assert decide_escalation([settled], SLA, VOCAB, CONTACTS, T0, "r").actions == []


def test_rungs_due_together_fire_in_order_in_one_write():
    plan = decide_escalation([open_ticket()], SLA, VOCAB, CONTACTS, T0 + timedelta(days=2), "r")
    (action,) = plan.actions
    assert action.fields["escalation"] == tuple(LADDER)
    assert [n.context["rung"] for n in action.notices] == LADDER
    assert action.notices[0].to == ("zhang.wei@ops.example.cn",)
    assert action.notices[1].to == ("incident.manager@ops.example.cn",)
    assert action.notices[2].to == ("chen.jing@ops.example.cn", "zhao.lei@ops.example.cn")


def test_major_impact_reaches_management_at_breach():
    due = due_times(open_ticket(impact="major"), SLA)
    assert due["management"] == due["breached"] == T0 + timedelta(hours=2)
    assert due["convene"] == due["breached"]  # reaching management passes convene too


def test_resolved_ticket_stops_climbing():
    ticket, _ = run_ladder(open_ticket(), [T0 + timedelta(hours=7)])
    resolved = ticket.with_changes(status="resolved")
    plan = decide_escalation([resolved], SLA, VOCAB, CONTACTS, T0 + timedelta(days=3), "r")
    assert plan.actions == []


def test_priority_raised_mid_flight_is_measured_against_the_new_target():
    ticket, fired = run_ladder(open_ticket(priority="low"), [T0 + timedelta(hours=4.5)])
    assert fired == [[]]
    urgent = ticket.with_changes(priority="urgent")
    plan = decide_escalation([urgent], SLA, VOCAB, CONTACTS, T0 + timedelta(hours=4.5), "r")
    (action,) = plan.actions
    assert action.fields["escalation"] == ("at-risk", "breached")


def test_business_hours_skip_the_weekend_and_holidays():
    cal = Calendar.from_dict(load_yaml("sla.yaml")["calendar"], "Asia/Shanghai")
    friday_5pm = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)  # 17:00 Shanghai
    assert cal.add(friday_5pm, 2) == datetime(2026, 11, 30, 2, 0, tzinfo=UTC)  # Mon 10:00
    before_national_day = datetime(2026, 9, 30, 9, 30, tzinfo=UTC)  # Wed 17:30
    # Oct 1-2 and 5-7 are holidays, 3-4 a weekend: the next working hour is Oct 8, 09:00.
    assert cal.add(before_national_day, 1) == datetime(2026, 10, 8, 1, 30, tzinfo=UTC)
    sunday_night = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)  # Sunday 23:00
    assert cal.add(sunday_night, 9) == datetime(2026, 11, 30, 10, 0, tzinfo=UTC)  # Mon 18:00


def test_medium_ticket_of_the_spring_festival_friday_breaches_on_the_make_up_saturday():
    # Friday 2026-02-13 17:00 Shanghai, medium: respond 4 business hours, resolve 24.
    friday = datetime(2026, 2, 13, 9, 0, tzinfo=UTC)
    ticket = open_ticket(priority="medium", created=friday)
    assert SLA.add(ticket, friday, SLA.respond_hours["medium"]) == \
        datetime(2026, 2, 14, 4, 0, tzinfo=UTC)  # Saturday 14th (worked) 12:00
    # 1 h on Friday, 9 on Saturday 14th, then Feb 15-23 off: 9 on the 24th, 5 on the 25th.
    assert due_times(ticket, SLA)["breached"] == datetime(2026, 2, 25, 6, 0, tzinfo=UTC)


def test_the_plan_carries_the_calendars_warning_about_the_coming_year():
    plan = decide_escalation([open_ticket()], SLA, VOCAB, CONTACTS,
                             datetime(2026, 11, 26, 8, 0, tzinfo=UTC), "r")
    (warning,) = plan.warnings
    assert "2027" in warning and "make-up working days" in warning
    from incident_ops.policy.plan import Plan

    assert Plan.from_dict(plan.to_dict()).warnings == plan.warnings
    assert decide_escalation([open_ticket()], SLA, VOCAB, CONTACTS, T0 - timedelta(days=180),
                             "r").warnings == []


def test_low_priority_target_counts_business_hours_only():
    friday = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)  # Friday 09:00 Shanghai
    due = due_times(open_ticket(priority="low", created=friday), SLA)
    # 72 business hours of 9 a day = 8 working days: Friday..Tuesday after next, 18:00.
    assert due["breached"] == datetime(2026, 12, 8, 10, 0, tzinfo=UTC)


@settings(max_examples=200, deadline=None)
@given(priority=st.sampled_from(["urgent", "high", "medium", "low"]),
       impact=st.sampled_from(["major", "high", "medium", "low"]),
       steps=st.lists(st.floats(min_value=0.01, max_value=40), min_size=1, max_size=25))
def test_rungs_fire_in_order_and_at_most_once(priority, impact, steps):
    times, now = [], T0
    for step in steps:
        now += timedelta(hours=step)
        times.append(now)
    ticket, fired = run_ladder(open_ticket(priority=priority, impact=impact), times)
    flat = [r for run in fired for r in run]
    assert len(flat) == len(set(flat))
    assert flat == LADDER[:len(flat)]
    due = due_times(ticket, SLA)
    assert set(flat) == {r for r in LADDER if due[r] <= times[-1]}


def test_urgent_ticket_notifies_incident_manager_and_system_management_once():
    t = open_ticket(priority="urgent")
    plan = decide_urgent([t], VOCAB, CONTACTS, T0, "r", "http://airflow:8080")
    (action,) = plan.actions
    email, sms = action.notices
    assert email.to == ("incident.manager@ops.example.cn", "wu.hua@ops.example.cn")
    assert sms.channel == "sms" and sms.to == ("13800000031", "13800000041")
    assert action.fields == {"urgent_notified": "urgent"}
    assert not email.context["emergency"]
    notified = t.with_changes(urgent_notified="urgent")
    assert decide_urgent([notified], VOCAB, CONTACTS, T0, "r", "http://a").actions == []


def test_first_line_cannot_handle_gives_a_ready_emergency_command():
    t = open_ticket("77", priority="urgent", first_line_cannot_handle=True)
    (action,) = decide_urgent([t], VOCAB, CONTACTS, T0, "r", "http://af:8080").actions
    assert action.step == "100.5.2"
    commands = action.notices[0].context["commands"]
    assert commands["cli"].startswith("airflow dags trigger emergency_response --conf ")
    assert '"ticket_id": "77"' in commands["cli"]
    assert "http://af:8080/api/v2/dags/emergency_response/dagRuns" in commands["rest"]


def test_non_urgent_tickets_are_not_notified():
    plan = decide_urgent([open_ticket(priority="high")], VOCAB, CONTACTS, T0, "r", "http://a")
    assert plan.actions == []
    assert [a.kind for a in decide_escalation([open_ticket()], SLA, VOCAB, CONTACTS, T0,
                                              "r").actions] == [ESCALATE]
