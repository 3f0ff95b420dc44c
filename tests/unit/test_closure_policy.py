"""The closure rules of 100.6-100.7, read as sentences."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta

from factories import CONTACTS, NOW, VOCAB, complete
from hypothesis import given, settings
from hypothesis import strategies as st

from incident_ops.config import load_yaml
from incident_ops.model import CLOSED, UNSUCCESSFUL
from incident_ops.policy.closure import ClosurePolicy, decide_closure
from incident_ops.policy.plan import (
    ASK_CONFIRMATION,
    BOUNCE,
    BREAK_LINK,
    CASCADE_CLOSE,
    CLOSE,
    REMIND_HELPDESK,
    REOPEN,
)

POLICY = ClosurePolicy.from_dict(load_yaml("closure.yaml"))


def decide(resolved, related=(), policy=POLICY, now=NOW):
    return decide_closure(resolved, related, policy, VOCAB, CONTACTS, now, "run-1")


def kinds(plan):
    return {(a.kind, a.ticket_id) for a in plan.actions}


def test_alarm_ticket_closes_with_its_duplicates():
    master = complete("10", close_code="self-healed")
    dups = [complete("11", duplicate_of="10", status="new", solution=None),
            complete("12", duplicate_of="10", status="resolved")]
    plan = decide([master, dups[1]], [dups[0]])
    assert kinds(plan) == {(CLOSE, "10"), (CASCADE_CLOSE, "11"), (CASCADE_CLOSE, "12")}
    for action in plan.actions:
        assert action.status == CLOSED
        assert action.fields["close_code"] == "self-healed"
    assert {a.master_id for a in plan.actions if a.kind == CASCADE_CLOSE} == {"10"}


def test_chain_of_duplicates_closes_transitively():
    chain = [complete("20")] + [complete(str(i), duplicate_of=str(i - 1), status="new")
                                for i in range(21, 25)]
    plan = decide([chain[0]], chain[1:])
    assert kinds(plan) == {(CLOSE, "20")} | {(CASCADE_CLOSE, str(i)) for i in range(21, 25)}


def test_already_closed_duplicate_is_left_alone():
    plan = decide([complete("30")], [complete("31", duplicate_of="30", status=CLOSED)])
    assert kinds(plan) == {(CLOSE, "30")}


def test_a_ticket_read_without_its_record_is_never_judged():
    # A light read (no custom fields) must not look like an incomplete or closable record.
    master = replace(complete("35", close_code="self-healed"), partial=True)
    dup = complete("36", duplicate_of="35", status="new")
    plan = decide([master], [dup])
    assert plan.actions == [] and not plan.findings
    assert set(plan.waiting) == {"35", "36"}


def test_duplicate_cycle_is_reported_and_broken_at_the_lowest_id():
    a = complete("41", duplicate_of="43")
    b = complete("42", duplicate_of="41")
    c = complete("43", duplicate_of="42")
    plan = decide([a, b, c])
    assert any(f.field == "duplicate_of" and "cycle" in f.message and f.ticket_id == "41"
               for f in plan.findings)
    breaks = [a for a in plan.actions if a.kind == BREAK_LINK]
    assert [(x.ticket_id, x.unlink_from) for x in breaks] == [("41", "43")]
    # 41 became the root: it closes, and the rest of the family with it.
    assert {(CLOSE, "41"), (CASCADE_CLOSE, "42"), (CASCADE_CLOSE, "43")} <= kinds(plan)


def test_a_broken_cycle_closes_in_the_same_run():
    """The break changes both ends of the removed link (41 and 43): their closes must not
    wait for a version the break itself moved on; the untouched 42 keeps its check."""
    plan = decide([complete("41", duplicate_of="43"), complete("42", duplicate_of="41"),
                   complete("43", duplicate_of="42")])
    versions = {a.ticket_id: a.expected_version for a in plan.actions if a.kind != BREAK_LINK}
    assert versions == {"41": None, "42": "v-42", "43": None}


def test_tickets_outside_a_broken_cycle_keep_their_version_check():
    plan = decide([complete("44", duplicate_of="44"), complete("45")])
    assert {a.ticket_id: a.expected_version for a in plan.actions if a.kind == CLOSE} == \
        {"44": None, "45": "v-45"}


def test_self_link_is_reported_and_removed():
    plan = decide([complete("50", duplicate_of="50")])
    assert [f.ticket_id for f in plan.findings] == ["50"]
    assert kinds(plan) == {(BREAK_LINK, "50"), (CLOSE, "50")}


def test_incomplete_fault_bounces_to_its_resolver_with_exact_missing_fields():
    fault = complete("60", category="fault", recovered_at=None, faulty_vendor="",
                     resolver_role="l1")
    plan = decide([fault])
    (action,) = plan.actions
    assert action.kind == BOUNCE and action.status == "assigned-l1"
    assert action.reason == "incomplete: faulty_vendor, recovered_at"
    assert "100.6.4" in action.comment and "业务恢复时间" in action.comment
    assert "faulty vendor is missing" in action.comment
    assert action.notices[0].to == ("liu.yang@ops.example.cn",)


def test_duplicates_of_an_incomplete_master_wait_with_it():
    plan = decide([complete("70", solution=None)], [complete("71", duplicate_of="70",
                                                             status="new")])
    assert kinds(plan) == {(BOUNCE, "70")}
    assert "70" in plan.waiting["71"]


def test_unknown_close_code_is_incomplete():
    plan = decide([complete("80", close_code="fixed-by-magic")])
    (action,) = plan.actions
    assert action.kind == BOUNCE
    assert "fixed-by-magic" in action.comment


def test_completion_time_in_the_future_or_before_creation_is_incomplete():
    future = complete("81", completed_at=NOW + timedelta(hours=1))
    early = complete("82", completed_at=NOW - timedelta(days=3))
    plan = decide([future, early])
    assert kinds(plan) == {(BOUNCE, "81"), (BOUNCE, "82")}


def test_ticket_the_help_desk_dispatched_asks_the_requester():
    ticket = complete("90", source="phone", dispatched_by_helpdesk=True)
    (action,) = decide([ticket]).actions
    assert action.kind == ASK_CONFIRMATION and action.step == "100.7.2"
    assert action.fields["confirmation"] == "pending"
    assert action.notices[0].to == ("user@example.cn",)
    assert action.reason.startswith("Phone, dispatched by the help desk, resolved by "
                                    "Second-line support and back with the help desk")


def test_ticket_handled_by_support_themselves_closes_under_100_7_4():
    (action,) = decide([complete("91", source="portal")]).actions
    assert (action.kind, action.step) == (CLOSE, "100.7.4")
    assert action.reason == ("resolved by Second-line support, not dispatched by the help "
                             "desk: closed by its resolver with its close code")


def test_phone_ticket_the_help_desk_resolved_itself_asks_the_requester():
    """100.7.4 is for L1/L2: a ticket the help desk resolved is the help desk's to close,
    and a user-raised one is closed only after the requester is asked (100.7.2)."""
    ticket = complete("110", source="phone", category="request", resolver_role="helpdesk",
                      dispatched_by_helpdesk=False)
    (action,) = decide([ticket]).actions
    assert (action.kind, action.step, action.rule) == (ASK_CONFIRMATION, "100.7.2",
                                                       "confirm.ask")
    assert action.reason == ("Phone, resolved by Help desk: the help desk asks the requester "
                             "whether it is fixed")


def test_alarm_the_help_desk_resolved_closes_under_100_7_1_without_asking():
    plan = decide([complete("111", resolver_role="helpdesk")],
                  [complete("112", duplicate_of="111", status="new")])
    assert {(a.kind, a.ticket_id, a.step) for a in plan.actions} == {
        (CLOSE, "111", "100.7.1"), (CASCADE_CLOSE, "112", "100.7.1")}
    assert plan.actions[0].reason == ("Monitoring alarm, resolved by Help desk: the help desk "
                                      "closes it without asking the requester")


def test_alarm_dispatched_by_the_help_desk_goes_back_to_it_and_closes_under_100_7_1():
    ticket = complete("113", source="auto-transfer", dispatched_by_helpdesk=True,
                      resolver_role="l1")
    (action,) = decide([ticket]).actions
    assert (action.kind, action.step, action.rule) == (CLOSE, "100.7.1", "close.auto-source")
    assert "Auto-transfer from another system, dispatched by the help desk" in action.reason


def test_alarm_l2_handled_alone_closes_its_family_under_100_7_4():
    plan = decide([complete("114", resolver_role="l2")],
                  [complete("115", duplicate_of="114", status="new"),
                   complete("116", duplicate_of="115", status="new")])
    assert {(a.kind, a.ticket_id, a.step) for a in plan.actions} == {
        (CLOSE, "114", "100.7.4"), (CASCADE_CLOSE, "115", "100.7.4"),
        (CASCADE_CLOSE, "116", "100.7.4")}
    assert plan.actions[1].reason == ("duplicate of #114 (closed under 100.7.4): closed "
                                      "with the master's close code")


def test_late_duplicate_follows_the_step_its_master_was_closed_under():
    master = complete("117", status=CLOSED, automation="100.7.4 close.handled-by-support · run x")
    (action,) = decide([complete("118", duplicate_of="117")], [master]).actions
    assert (action.kind, action.step) == (CASCADE_CLOSE, "100.7.4")


def test_unknown_resolver_role_goes_through_the_help_desk_with_a_warning():
    off = ClosurePolicy.from_dict({**load_yaml("closure.yaml"),
                                   "completeness": {"resolver_role": False}})
    plan = decide([complete("119", source="email", resolver_role=None)], policy=off)
    assert kinds(plan) == {(ASK_CONFIRMATION, "119")}
    assert [(f.field, f.severity) for f in plan.findings] == [("resolver_role", "warning")]


@settings(max_examples=200, deadline=None)
@given(source=st.sampled_from(["phone", "email", "portal", "helpdesk", "monitoring",
                               "auto-transfer"]),
       role=st.sampled_from(["l1", "l2", "helpdesk"]), dispatched=st.booleans())
def test_routing_follows_the_spec_table(source, role, dispatched):
    """100.7 as a table: L1/L2 close what the help desk did not dispatch (100.7.4); the
    help desk closes alarms and auto-transfers (100.7.1) and asks about the rest (100.7.2)."""
    ticket = complete("120", source=source, resolver_role=role,
                      dispatched_by_helpdesk=dispatched)
    (action,) = decide([ticket]).actions
    if role in ("l1", "l2") and not dispatched:
        expected = (CLOSE, "100.7.4")
    elif source in ("monitoring", "auto-transfer"):
        expected = (CLOSE, "100.7.1")
    else:
        expected = (ASK_CONFIRMATION, "100.7.2")
    assert (action.kind, action.step) == expected


def test_confirmed_ticket_closes_with_its_duplicates():
    t = complete("92", source="email", dispatched_by_helpdesk=True, confirmation="confirmed")
    plan = decide([t], [complete("93", duplicate_of="92", status="new")])
    assert kinds(plan) == {(CLOSE, "92"), (CASCADE_CLOSE, "93")}


def test_rejected_ticket_closes_unsuccessful_and_reopens_to_the_original_handler():
    t = complete("94", source="phone", dispatched_by_helpdesk=True, confirmation="rejected",
                 handler="li.na", handler_tier="l1")
    (action,) = decide([t]).actions
    assert action.kind == REOPEN and action.fields["close_code"] == UNSUCCESSFUL
    assert action.create.owner == "li.na" and action.create.status == "assigned-l1"
    assert action.create.refers_to == ("94",)
    assert action.create.idempotency_key == action.key
    assert action.notices[0].to == ("li.na@ops.example.cn",)
    assert action.notices[0].cc == ("helpdesk@ops.example.cn",)


def test_pending_answer_reminds_the_help_desk_once_after_the_wait():
    t = complete("95", source="phone", dispatched_by_helpdesk=True, confirmation="pending",
                 confirmation_asked_at=NOW - timedelta(hours=25))
    (action,) = decide([t]).actions
    assert action.kind == REMIND_HELPDESK
    again = t.with_changes(automation_keys=(action.key,))
    assert decide([again]).actions == []


def test_pending_answer_before_the_wait_does_nothing():
    t = complete("96", source="phone", dispatched_by_helpdesk=True, confirmation="pending",
                 confirmation_asked_at=NOW - timedelta(hours=2))
    plan = decide([t])
    assert plan.actions == [] and plan.waiting["96"] == "awaiting the requester's answer"


def test_closing_without_an_answer_is_a_switch_off_by_default():
    t = complete("97", source="phone", dispatched_by_helpdesk=True, confirmation="pending",
                 confirmation_asked_at=NOW - timedelta(hours=100))
    assert kinds(decide([t])) == {(REMIND_HELPDESK, "97")}
    on = ClosurePolicy.from_dict({**load_yaml("closure.yaml"),
                                  "confirmation": {"close_without_answer": True}})
    assert kinds(decide([t], policy=on)) == {(CLOSE, "97")}


def test_late_duplicate_of_a_closed_master_follows_its_close_code():
    master = complete("98", status=CLOSED, close_code="workaround")
    plan = decide([complete("99", duplicate_of="98", close_code="solved")], [master])
    (action,) = plan.actions
    assert action.kind == CASCADE_CLOSE and action.fields["close_code"] == "workaround"


def test_open_duplicates_under_a_master_closed_earlier_close_with_its_code():
    master = complete("110", status=CLOSED, close_code="workaround")
    chain = [complete("111", duplicate_of="110", status="new", close_code=None),
             complete("112", duplicate_of="111", status="assigned-l1", close_code=None),
             complete("113", duplicate_of="110", status=CLOSED, close_code="solved")]
    plan = decide([], [master, *chain])
    assert kinds(plan) == {(CASCADE_CLOSE, "111"), (CASCADE_CLOSE, "112")}
    assert {(a.fields["close_code"], a.master_id) for a in plan.actions} == {("workaround", "110")}


def test_open_duplicates_of_an_unsuccessful_master_are_left_for_its_reopened_copy():
    master = complete("114", status=CLOSED, close_code=UNSUCCESSFUL)
    assert decide([], [master, complete("115", duplicate_of="114", status="new")]).actions == []


def test_resolved_duplicate_of_an_open_master_waits():
    plan = decide([complete("101", duplicate_of="100")], [complete("100", status="in-progress")])
    assert plan.actions == [] and "#100" in plan.waiting["101"]


def test_action_already_carried_by_the_ticket_is_not_planned_again():
    first = decide([complete("102")]).actions[0]
    assert decide([complete("102", automation_keys=(first.key,))]).actions == []


# -- properties -------------------------------------------------------------------------

@st.composite
def families(draw):
    """A few masters with random trees of duplicates, some closed, some alarms, some not."""
    count = draw(st.integers(1, 25))
    tickets = []
    for i in range(1, count + 1):
        parent = draw(st.one_of(st.none(), st.integers(1, count)))
        tickets.append(complete(
            str(i),
            duplicate_of=str(parent) if parent is not None else None,
            status=draw(st.sampled_from(["resolved", "resolved", "new", CLOSED])),
            close_code=draw(st.sampled_from(["solved", "workaround", "self-healed"])),
            source=draw(st.sampled_from(["monitoring", "phone", "auto-transfer"])),
            dispatched_by_helpdesk=draw(st.booleans()),
            confirmation=draw(st.sampled_from([None, "confirmed", "rejected", "pending"])),
            confirmation_asked_at=NOW - timedelta(hours=1),
        ))
    return tickets


def split(tickets):
    return [t for t in tickets if t.status == "resolved"], [t for t in tickets
                                                             if t.status != "resolved"]


@settings(max_examples=300, deadline=None)
@given(families())
def test_every_duplicate_of_a_closed_master_closes_with_its_code_exactly_once(tickets):
    resolved, related = split(tickets)
    plan = decide(resolved, related)
    closes = [a for a in plan.actions if a.kind in (CLOSE, CASCADE_CLOSE, REOPEN)]
    ids = [a.ticket_id for a in closes]
    assert len(ids) == len(set(ids)), "a ticket is closed twice or closed and reopened"
    code = {a.ticket_id: a.fields["close_code"] for a in closes}
    by_id = {t.id: t for t in tickets}
    broken = {a.ticket_id for a in plan.actions if a.kind == BREAK_LINK}
    for action in plan.actions:
        if action.kind != CLOSE:
            continue
        # walk every ticket whose (unbroken) master chain reaches this master
        for t in tickets:
            node, seen = t, set()
            while node.duplicate_of and node.id not in broken and node.id not in seen:
                seen.add(node.id)
                node = by_id.get(node.duplicate_of, node)
                if node.id == action.ticket_id and t.status != CLOSED:
                    assert code.get(t.id) == code[action.ticket_id]


@settings(max_examples=200, deadline=None)
@given(families(), st.randoms(use_true_random=False))
def test_plan_is_the_same_whatever_order_tickets_arrive_in(tickets, rnd: random.Random):
    resolved, related = split(tickets)
    shuffled_r, shuffled_o = resolved[:], related[:]
    rnd.shuffle(shuffled_r)
    rnd.shuffle(shuffled_o)
    assert decide(resolved, related).to_dict() == decide(shuffled_r, shuffled_o).to_dict()


@settings(max_examples=100, deadline=None)
@given(families())
def test_a_plan_survives_the_trip_through_xcom_json(tickets):
    import json

    from incident_ops.policy.plan import Plan

    resolved, related = split(tickets)
    plan = decide(resolved, related)
    wire = json.loads(json.dumps(plan.to_dict()))
    assert Plan.from_dict(wire).to_dict() == plan.to_dict()
    assert Plan.from_dict(wire).actions == plan.actions
