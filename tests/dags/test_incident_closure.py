"""incident_closure end to end: dag.test() against the real RT desk and the SMTP receiver.

Each test makes its own tickets (a unique tag in the subject), runs the DAG and reads the
tickets back from the desk. Other tests' resolved tickets may be processed by the same run;
assertions only look at this test's tickets and mails.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from incident_ops.desk.port import TicketQuery
from incident_ops.model import TicketDraft
from incident_ops.policy.plan import action_key
from tests.dags.conftest import mails_about, succeeded
from tests.support import artefacts
from tests.support.airflow_dags import run_dag, xcom

pytestmark = [pytest.mark.integration, pytest.mark.dags]

def make(env, subject: str, *, status: str = "resolved", **fields: Any) -> str:
    """A ticket in the desk, complete by default (a resolved monitoring alarm)."""
    values: dict[str, Any] = {
        "source": "monitoring", "category": "alarm", "system": "billing", "impact": "medium",
        "resolver_role": "l2", "handler_tier": "l2", "solution": "重启计费进程 restarted",
        "close_code": "self-healed", "config_item": "bill-app-01",
        "completed_at": datetime.now(UTC).replace(microsecond=0),
        "dispatched_by_helpdesk": False,
    }
    values.update(fields)
    requester = values.pop("requester", "requester@example.cn")
    owner = values.pop("owner", "liu.yang")
    draft = TicketDraft(queue="Incidents", subject=f"[{env['tag']}] {subject}",
                        description=f"test ticket {subject}", status=status, priority="high",
                        owner=owner, requester=requester, fields=values,
                        idempotency_key=f"test:{env['tag']}:{subject}")
    return env["desk"].create(draft)


def person_edits(env, ticket_id: str, body: dict[str, Any]) -> None:
    response = requests.put(f"{env['url']}/REST/2.0/ticket/{ticket_id}", json=body,
                            auth=("root", "password"), timeout=30)
    assert response.status_code == 200, response.text


def ticket(env, ticket_id: str):
    return env["desk"].get(ticket_id)


def retry_apply(env, run):
    """What Airflow's retry of the apply task does: the same plan, through the engine, with
    the pipeline's lease and outbox (the run's outbox Variable is read through the DB)."""
    from incident_ops.engine import Applier, MemoryOutbox
    from incident_ops.policy.plan import Plan
    from tests.support.airflow_dags import NoopNotifier

    planned = xcom(run, "plan")
    return Applier(env["desk"], NoopNotifier(), run.run_id, outbox=MemoryOutbox()).apply(
        Plan.from_dict(planned["plan"]), planned["keys"])


def test_alarm_with_a_chain_of_duplicates_closes_all_with_the_masters_code(env):
    master = make(env, "告警风暴 主单", resolver_role="helpdesk")
    chain = [master]
    for i in range(3):  # master <- d1 <- d2 <- d3, the last ones still open
        dup = make(env, f"告警风暴 重复{i}", status="new" if i else "resolved",
                   close_code="solved", solution=None)
        env["desk"].link_duplicate(dup, chain[-1])
        chain.append(dup)
    run = run_dag("incident_closure")
    succeeded(run)
    for tid in chain:
        t = ticket(env, tid)
        assert (t.status, t.close_code) == ("closed", "self-healed"), tid
        assert run.run_id in (t.automation or ""), t.automation
    report = xcom(run, "report")
    assert f"#{chain[-1]}" in artefacts.read_text(report["report"]["html"])
    data = artefacts.read_json(report["report"]["json"])
    mine = {o["ticket_id"]: o for o in data["outcomes"] if o["ticket_id"] in chain}
    assert mine[master]["kind"] == "close" and mine[master]["step"] == "100.7.1"
    assert {(mine[t]["kind"], mine[t]["step"]) for t in chain[1:]} == {
        ("cascade_close", "100.7.1")}
    assert {o["outcome"] for o in mine.values()} == {"done"}


def test_phone_ticket_the_help_desk_resolved_itself_asks_the_requester(env):
    """Not 100.7.4: that branch is L1/L2 closing what they handled undispatched."""
    tid = make(env, "帮助台自行解决", source="phone", category="request", close_code="solved",
               resolver_role="helpdesk", dispatched_by_helpdesk=False,
               requester="zhao.user@example.cn")
    run = run_dag("incident_closure")
    succeeded(run)
    (outcome,) = [o for o in xcom(run, "apply")["outcomes"] if o["ticket_id"] == tid]
    assert (outcome["kind"], outcome["step"], outcome["outcome"]) == (
        "ask_confirmation", "100.7.2", "done")
    t = ticket(env, tid)
    assert (t.status, t.confirmation) == ("resolved", "pending")
    (ask,) = mails_about(env, tid)
    assert str(ask["To"]) == "zhao.user@example.cn"
    plan = {a["ticket_id"]: a for a in xcom(run, "plan")["plan"]["actions"]}
    assert plan[tid]["reason"].startswith("Phone, resolved by Help desk")


def test_alarm_l2_handled_alone_closes_with_its_duplicates_under_100_7_4(env):
    master = make(env, "二线自行处理的告警", resolver_role="l2")
    dup = make(env, "二线自行处理的告警 重复", status="new", solution=None)
    env["desk"].link_duplicate(dup, master)
    run = run_dag("incident_closure")
    succeeded(run)
    steps = {o["ticket_id"]: (o["kind"], o["step"], o["outcome"])
             for o in xcom(run, "apply")["outcomes"]}
    assert steps[master] == ("close", "100.7.4", "done")
    assert steps[dup] == ("cascade_close", "100.7.4", "done")
    assert ticket(env, dup).automation.startswith("100.7.4 close.duplicate-cascade")


def test_a_duplicate_loop_stored_in_the_desk_is_broken_and_closed_in_one_run(env,
                                                                            embedded_desk):
    """RT's API refuses loops, but a desk migrated from one without that check can hold one:
    here it is written into RT's database directly. One run breaks it at the lowest id and
    closes the whole family."""
    import sqlite3

    if embedded_desk is None:
        pytest.skip("the loop is written into the embedded desk's own database")
    a = make(env, "循环 A", resolver_role="helpdesk")
    b = make(env, "循环 B", status="new", solution=None)
    c = make(env, "循环 C", status="new", solution=None)
    env["desk"].link_duplicate(b, a)
    env["desk"].link_duplicate(c, b)
    with sqlite3.connect(embedded_desk.db_path, timeout=30) as db:
        base, target = db.execute(
            "SELECT Base, Target FROM Links WHERE Type = 'MemberOf' AND LocalBase = ?",
            (int(b),)).fetchone()
        prefix = target.rsplit("/", 1)[0]
        db.execute("INSERT INTO Links (Base, Target, Type, LocalBase, LocalTarget, Creator, "
                   "Created, LastUpdatedBy, LastUpdated) SELECT ?, ?, 'MemberOf', ?, ?, "
                   "Creator, Created, LastUpdatedBy, LastUpdated FROM Links WHERE Base = ? "
                   "AND Type = 'MemberOf'",
                   (f"{prefix}/{a}", f"{prefix}/{c}", int(a), int(c), base))
    assert ticket(env, a).duplicate_of == c  # the loop a -> c -> b -> a is in the desk
    run = run_dag("incident_closure")
    succeeded(run)
    outcomes = {o["ticket_id"]: (o["kind"], o["outcome"]) for o in xcom(run, "apply")["outcomes"]
                if o["ticket_id"] in (a, b, c) and o["kind"] != "break_link"}
    assert outcomes == {a: ("close", "done"), b: ("cascade_close", "done"),
                        c: ("cascade_close", "done")}, outcomes
    breaks = [o for o in xcom(run, "apply")["outcomes"] if o["kind"] == "break_link"]
    assert [(o["ticket_id"], o["outcome"]) for o in breaks] == [(a, "done")]
    assert [(t.status, t.close_code) for t in map(lambda x: ticket(env, x), (a, b, c))] == \
        [("closed", "self-healed")] * 3
    assert ticket(env, a).duplicate_of is None


def test_duplicate_cycle_is_refused_at_the_desk_and_the_family_still_closes(env):
    """RT refuses a MemberOf loop outright, so on this desk a cycle can't be stored; the
    policy's own cycle breaking (unit- and property-tested) guards desks that don't refuse.
    Here: the refusal is a clear error naming the ticket, and the family closes normally."""
    from incident_ops.desk.port import RejectedChange

    a = make(env, "循环 A")
    b = make(env, "循环 B", status="new")
    env["desk"].link_duplicate(b, a)
    with pytest.raises(RejectedChange) as refused:
        env["desk"].link_duplicate(a, b)
    assert refused.value.ticket_id == a and "circular" in str(refused.value)
    succeeded(run_dag("incident_closure"))
    assert [ticket(env, t).status for t in (a, b)] == ["closed", "closed"]


def test_ticket_edited_by_a_person_mid_run_is_left_for_the_next_run(env, monkeypatch):
    edited = make(env, "处理中被人工修改")
    untouched = make(env, "同批次未修改")
    from incident_ops.engine import Applier

    real_apply = Applier.apply

    def person_then_apply(self, plan, known_keys=None):  # the person acts after fetch
        person_edits(env, edited, {"CustomFields": {"Solution": "人工补充的方案 edited by hand"}})
        return real_apply(self, plan, known_keys)

    monkeypatch.setattr(Applier, "apply", person_then_apply)
    run = run_dag("incident_closure")
    monkeypatch.setattr(Applier, "apply", real_apply)
    succeeded(run)
    outcomes = {o["ticket_id"]: o["outcome"] for o in xcom(run, "apply")["outcomes"]}
    assert outcomes[edited] == "stale" and outcomes[untouched] == "done"
    t = ticket(env, edited)
    assert t.status == "resolved" and t.solution == "人工补充的方案 edited by hand"
    assert ticket(env, untouched).status == "closed"
    run_dag("incident_closure")
    assert ticket(env, edited).status == "closed"


def test_rejected_confirmation_gives_exactly_one_reopened_ticket(env):
    old = make(env, "用户反映未解决", source="phone", dispatched_by_helpdesk=True,
               confirmation="rejected", category="request", close_code="solved",
               owner="li.na", handler_tier="l1", resolver_role="l1")
    dup = make(env, "同一问题的重复单", status="new", source="phone", category="request")
    env["desk"].link_duplicate(dup, old)
    run = run_dag("incident_closure")
    succeeded(run)
    (outcome,) = [o for o in xcom(run, "apply")["outcomes"] if o["ticket_id"] == old]
    assert outcome["outcome"] == "done", outcome  # in one run, not left stale by our own link
    assert (ticket(env, old).status, ticket(env, old).close_code) == ("closed", "unsuccessful")
    # A retry of apply re-applies the same plan, and the run is executed again: no new copy.
    again = retry_apply(env, run)
    assert {o.outcome for o in again.outcomes if o.ticket_id == old} == {"skipped"}
    succeeded(run_dag("incident_closure"))
    key = action_key("reopen", old)
    copies = list(env["desk"].search(TicketQuery(queue=None, fields={"idempotency_key": key})))
    assert [c.id for c in copies] == [outcome["created_id"]]
    new = env["desk"].get(copies[0].id)
    assert new.subject.startswith(f"[重开 Reopened #{old}]")
    assert (new.status, new.handler, new.handler_tier) == ("assigned-l1", "li.na", "l1")
    assert ticket(env, dup).duplicate_of == new.id  # the open duplicate follows the copy
    mails = mails_about(env, old)
    assert len(mails) == 1 and "li.na@ops.example.cn" in str(mails[0]["To"])
    assert "helpdesk@ops.example.cn" in str(mails[0]["Cc"])
    assert f"#{new.id}" in mails[0].get_body(("html",)).get_content()


def test_a_late_run_does_not_take_a_recent_completion_time_for_the_future(env):
    """A scheduled run that starts 20 minutes after its interval ended (a busy scheduler,
    a DAG unpaused): the desk is read now, so a resolution completed a minute ago is
    complete (100.6.8), not "in the future" of the run's interval."""
    from datetime import timedelta

    tid = make(env, "迟到的运行", completed_at=datetime.now(UTC).replace(microsecond=0))
    run = run_dag("incident_closure", logical_date=datetime.now(UTC) - timedelta(minutes=20))
    succeeded(run)
    assert ticket(env, tid).status == "closed"
    assert not [m for m in mails_about(env, tid) if "incomplete" in str(m["Subject"])]


def test_dry_run_changes_nothing_and_publishes_the_plan(env):
    tid = make(env, "演练")
    before = ticket(env, tid)
    run = run_dag("incident_closure", conf={"dry_run": True})
    succeeded(run)
    after = ticket(env, tid)
    assert (after.status, after.version) == (before.status, before.version)
    report = xcom(run, "report")
    html = artefacts.read_text(report["report"]["html"])
    assert "DRY RUN" in html and f"#{tid}" in html
    assert xcom(run, "apply") is None


def test_incomplete_fault_is_bounced_with_the_exact_missing_fields(env):
    tid = make(env, "故障记录不完整", category="fault", faulty_vendor=None, recovered_at=None,
               resolver_role="l1", owner="zhang.wei", handler_tier="l1")
    run = run_dag("incident_closure")
    succeeded(run)
    t = ticket(env, tid)
    assert t.status == "assigned-l1"
    (mail,) = mails_about(env, tid)
    assert str(mail["To"]) == "zhang.wei@ops.example.cn"
    body = mail.get_body(("html",)).get_content()
    assert "业务恢复时间" in body and "faulty vendor is missing" in body
    assert "solution is missing" not in body
    run_dag("incident_closure")  # unchanged: not flagged again
    assert len(mails_about(env, tid)) == 1


def test_dispatched_ticket_asks_the_requester_once_then_closes_when_confirmed(env):
    tid = make(env, "请确认", source="portal", dispatched_by_helpdesk=True, category="request",
               close_code="solved", requester="wang.user@example.cn")
    run_dag("incident_closure")
    assert ticket(env, tid).confirmation == "pending"
    (ask,) = mails_about(env, tid)
    assert str(ask["To"]) == "wang.user@example.cn"
    run_dag("incident_closure")
    assert len(mails_about(env, tid)) == 1
    person_edits(env, tid, {"CustomFields": {"Confirmation": "confirmed"}})
    run_dag("incident_closure")
    t = ticket(env, tid)
    assert (t.status, t.close_code) == ("closed", "solved")


def test_ticket_support_handled_themselves_closes_under_100_7_4(env):
    tid = make(env, "二线自行处理", source="portal", category="request", close_code="solved")
    run = run_dag("incident_closure")
    succeeded(run)
    (outcome,) = [o for o in xcom(run, "apply")["outcomes"] if o["ticket_id"] == tid]
    assert (outcome["kind"], outcome["step"], outcome["outcome"]) == ("close", "100.7.4", "done")
    assert (ticket(env, tid).status, ticket(env, tid).close_code) == ("closed", "solved")
    assert mails_about(env, tid) == []


def test_unanswered_confirmation_reminds_the_help_desk_once(env):
    from datetime import timedelta

    asked = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=25)
    tid = make(env, "请求人未回复", source="email", dispatched_by_helpdesk=True,
               category="request", close_code="solved", confirmation="pending",
               confirmation_asked_at=asked)
    for _ in range(2):
        succeeded(run_dag("incident_closure"))
    (mail,) = mails_about(env, tid)
    assert str(mail["To"]) == "helpdesk@ops.example.cn"
    assert ticket(env, tid).status == "resolved"  # still waiting: closing unanswered is off
