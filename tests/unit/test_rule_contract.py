"""The contract between the closure policy, the engine and the reports (policy.rules): the
engine stamps every ticket it changes with the action's step and rule id, the reports read
the rule id and the key kind back from the desk's fields."""

from __future__ import annotations

from incident_ops.engine.applier import audit_fields
from incident_ops.policy import rules
from incident_ops.policy.plan import CLOSE, Action, action_key


def test_the_engines_stamp_reads_back_as_the_actions_step_and_rule() -> None:
    for step, rule in (("100.7.1", rules.CLOSE_AUTO_SOURCE), ("100.6", rules.COMPLETENESS),
                       ("100.7.4", rules.CLOSE_HANDLED_BY_SUPPORT)):
        action = Action(kind=CLOSE, ticket_id="1", step=step, rule=rule, reason="",
                        key=action_key("close", "1"))
        written = audit_fields(action, "scheduled__2026-01-01 close.confirmed", ())["automation"]
        assert written == rules.stamp(step, rule, "scheduled__2026-01-01 close.confirmed")
        assert (rules.stamp_step(written), rules.stamp_rule(written)) == (step, rule)


def test_nothing_stamped_reads_as_no_rule_and_keys_read_as_their_kind() -> None:
    assert rules.stamp_rule(None) == rules.stamp_rule("") == rules.stamp_step(None) == ""
    assert rules.key_kind(action_key(rules.REOPEN_KEY, "42")) == rules.REOPEN_KEY
    assert rules.key_kind(action_key(rules.BOUNCE_KEY, "42", "x")) == rules.BOUNCE_KEY
    assert rules.key_kind("") == rules.key_kind(None) == rules.key_kind("no-colon") == ""
