"""The apply engine on the in-memory desk: keys, bulk and single writes, stale tickets, the
outbox that owes what a failure left undone, reopen order, families that wait whole, leases.

Outcomes are read off the desk (statuses, comments, tickets created) and off the senders
(what was delivered), never off the engine's own bookkeeping alone.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from incident_ops.artefacts import LocalStore
from incident_ops.desk.memory import MemoryDesk
from incident_ops.desk.port import DeskAuthError, RejectedChange, TransientDeskError
from incident_ops.engine import (
    Applier,
    Lease,
    LeaseBusy,
    LeaseLost,
    LeaseUnreachable,
    MemoryOutbox,
)
from incident_ops.model import CLOSED, RESOLVED, Ticket, TicketChange, TicketDraft
from incident_ops.notify.messages import Email, Sms
from incident_ops.policy.plan import (
    ASK_CONFIRMATION,
    CASCADE_CLOSE,
    CLOSE,
    CREATE,
    NOTIFY,
    REOPEN,
    Action,
    Notice,
    Plan,
    action_key,
)

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0
        self.mono = 1000.0

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        self.mono += seconds
        self.now += timedelta(seconds=seconds)


class Senders:
    """Records what was delivered; ``down`` makes the next sends fail like a 451."""

    def __init__(self) -> None:
        self.sent: list[Email | Sms] = []
        self.down = 0
        self.kill_after: int | None = None  # raise BaseException after N deliveries

    def _deliver(self, message: Email | Sms) -> None:
        if self.down:
            self.down -= 1
            raise ConnectionError("451 4.3.0 try again later")
        self.sent.append(message)
        if self.kill_after is not None and len(self.sent) >= self.kill_after:
            raise KeyboardInterrupt("killed after the server accepted the message")

    def send_email(self, email: Email) -> None:
        self._deliver(email)

    def send_sms(self, sms: Sms) -> None:
        self._deliver(sms)

    def keys(self) -> list[str]:
        return [m.key for m in self.sent]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def desk(clock: Clock) -> MemoryDesk:
    return MemoryDesk(clock=clock, users={"li.na": "li.na@ops.example.cn"})


def resolved(desk: MemoryDesk, **over: Any) -> Ticket:
    base: dict[str, Any] = dict(id="", subject="告警", status=RESOLVED, priority="high",
                                created=T0 - timedelta(hours=3), updated=T0, source="monitoring",
                                close_code="solved", handler="li.na", requester="u@example.cn")
    base.update(over)
    return desk.add(Ticket(**base))


def close(t: Ticket) -> Action:
    return Action(kind=CLOSE, ticket_id=t.id, step="100.7.1", rule="close.auto-source",
                  key=action_key("close", t.id), reason="test", status=CLOSED,
                  fields={"close_code": t.close_code}, expected_version=t.version)


def cascade(dup: Ticket, master: Ticket) -> Action:
    return Action(kind=CASCADE_CLOSE, ticket_id=dup.id, step="100.7.1",
                  rule="close.duplicate-cascade", key=action_key("cascade", dup.id, master.id),
                  reason="test", status=CLOSED, fields={"close_code": master.close_code},
                  expected_version=dup.version, master_id=master.id)


def ask(t: Ticket) -> Action:
    return Action(kind=ASK_CONFIRMATION, ticket_id=t.id, step="100.7.2", rule="confirm.ask",
                  key=action_key("ask", t.id), reason="test",
                  fields={"confirmation": "pending"}, comment="已请求确认 asked",
                  notices=(Notice("confirmation_request", (t.requester or "",),
                                  _context(t)),),
                  expected_version=t.version)


def reopen(t: Ticket, moved: tuple[str, ...] = ()) -> Action:
    key = action_key("reopen", t.id)
    draft = TicketDraft(queue="Incidents", subject=f"[重开 Reopened #{t.id}] {t.subject}",
                        description="reopened", idempotency_key=key, status="assigned-l1",
                        owner=t.handler, refers_to=(t.id,))
    return Action(kind=REOPEN, ticket_id=t.id, step="100.7.3", rule="confirm.rejected",
                  key=key, reason="test", status=CLOSED, fields={"close_code": "unsuccessful"},
                  create=draft, expected_version=t.version, move_duplicates=moved,
                  notices=(Notice("reopened", ("desk-user:li.na",), _context(t, moved=moved)),))


def _context(t: Ticket, **more: Any) -> dict[str, Any]:
    return {"id": t.id, "subject": t.subject, "solution": "", "handler": "li.na",
            "requester": "u@example.cn", "system": "计费", "category": "告警",
            "priority": "高", "close_code": "已解决", "run_id": "r1", **more}


def plan_of(*actions: Action, run_id: str = "r1") -> Plan:
    return Plan(pipeline="incident_closure", run_id=run_id, actions=list(actions))


def applier(desk: MemoryDesk, senders: Senders, outbox: MemoryOutbox | None = None,
            run_id: str = "r1", **kwargs: Any) -> Applier:
    return Applier(desk, senders, run_id, outbox=outbox or MemoryOutbox(), **kwargs)


# ------------------------------------------------------------------------- basics
def test_closes_go_in_bulk_and_an_action_already_carried_is_skipped(desk: MemoryDesk) -> None:
    a, b = resolved(desk), resolved(desk)
    done_before = replace(ask(b), key="ask:earlier")
    desk.edit(b.id, automation_keys=("ask:earlier",))
    b = desk.ticket(b.id)
    result = applier(desk, Senders()).apply(plan_of(close(a), replace(done_before,
                                                                         expected_version=b.version)),
                                            {b.id: b.automation_keys})
    assert [o.outcome for o in result.outcomes] == ["done", "skipped"]
    assert desk.ticket(a.id).status == CLOSED and desk.calls["bulk_update"] == 1
    assert desk.comments_on(b.id) == []


def test_a_ticket_a_person_changed_is_stale_and_nothing_is_sent(desk: MemoryDesk) -> None:
    t = resolved(desk)
    action = ask(t)
    desk.edit(t.id, solution="a person completed the record")
    senders = Senders()
    outbox = MemoryOutbox()
    result = applier(desk, senders, outbox).apply(plan_of(action))
    assert result.outcomes[0].outcome == "stale"
    assert senders.sent == [] and outbox.entries == {}
    assert desk.ticket(t.id).confirmation is None


def test_an_authentication_failure_stops_the_run(desk: MemoryDesk) -> None:
    t = resolved(desk)
    desk.fail("comment", DeskAuthError("401"))
    with pytest.raises(DeskAuthError):
        applier(desk, Senders()).apply(plan_of(ask(t)))


# --------------------------------------------------------------------- the outbox
def test_a_message_refused_for_now_is_owed_and_delivered_once_by_the_next_run(
        desk: MemoryDesk) -> None:
    t = resolved(desk)
    senders, outbox = Senders(), MemoryOutbox()
    senders.down = 1
    first = applier(desk, senders, outbox).apply(plan_of(ask(t)))
    assert first.outcomes[0].outcome == "undelivered" and len(first.undelivered) == 1
    assert desk.ticket(t.id).confirmation == "pending"  # the desk write is committed
    assert list(outbox.load()) == [ask(t).key]
    # The next run plans nothing for this ticket (it is pending now) and still delivers.
    second = applier(desk, senders, outbox, run_id="r2").apply(plan_of(run_id="r2"))
    assert [o.outcome for o in second.replayed] == ["done"]
    assert senders.keys() == [f"{ask(t).key}/0"] and outbox.load() == {}
    third = applier(desk, senders, outbox, run_id="r3").apply(plan_of(run_id="r3"))
    assert third.replayed == [] and len(senders.sent) == 1


def test_a_retry_of_the_same_plan_delivers_what_the_first_attempt_owed(desk: MemoryDesk) -> None:
    t = resolved(desk)
    senders, outbox = Senders(), MemoryOutbox()
    senders.down = 1
    plan = plan_of(ask(t))
    applier(desk, senders, outbox).apply(plan, {t.id: ()})
    again = applier(desk, senders, outbox).apply(plan, {t.id: ()})  # Airflow's retry
    assert [o.outcome for o in again.outcomes] == ["done"]
    assert len(senders.sent) == 1 and outbox.load() == {}
    assert len(desk.comments_on(t.id)) == 1


def test_killed_between_commit_and_send_the_message_is_sent_by_the_next_run(
        desk: MemoryDesk) -> None:
    t = resolved(desk)
    senders, outbox = Senders(), MemoryOutbox()

    class Killed(BaseException):
        pass

    def die(email: Email) -> None:
        raise Killed()

    senders.send_email = die  # type: ignore[method-assign]
    with pytest.raises(Killed):
        applier(desk, senders, outbox).apply(plan_of(ask(t)))
    assert desk.ticket(t.id).confirmation == "pending" and list(outbox.load())
    senders = Senders()
    applier(desk, senders, outbox, run_id="r2").apply(plan_of(run_id="r2"))
    assert senders.keys() == [f"{ask(t).key}/0"]


class Killed(BaseException):
    """SIGKILL, an OOM, a lost node: no ``except`` or ``finally`` of ours runs."""


def _killed_before_the_commit(desk: MemoryDesk, t: Ticket, outbox: MemoryOutbox) -> None:
    desk.fail("comment", Killed())  # type: ignore[arg-type]
    with pytest.raises(Killed):
        applier(desk, Senders(), outbox).apply(plan_of(ask(t)))
    assert list(outbox.load())  # the intent was recorded before the commit
    assert desk.ticket(t.id).confirmation is None  # and nothing happened


def test_killed_before_the_commit_the_next_plan_deciding_it_again_does_it_once(
        desk: MemoryDesk) -> None:
    t = resolved(desk)
    outbox = MemoryOutbox()
    _killed_before_the_commit(desk, t, outbox)
    senders = Senders()
    # The next run reads the same ticket and decides the same action (same key).
    result = applier(desk, senders, outbox, run_id="r2").apply(
        plan_of(ask(desk.ticket(t.id)), run_id="r2"))
    assert [o.outcome for o in result.outcomes] == ["done"]
    assert result.replayed == []
    assert desk.ticket(t.id).confirmation == "pending"
    assert len(senders.sent) == 1 and outbox.load() == {}
    now = desk.ticket(t.id)
    again = applier(desk, senders, outbox, run_id="r3").apply(
        plan_of(ask(now), run_id="r3"), {t.id: now.automation_keys})
    assert [o.outcome for o in again.outcomes] == ["skipped"] and len(senders.sent) == 1


def test_killed_before_the_commit_the_dead_runs_action_is_done_by_the_next_run(
        desk: MemoryDesk) -> None:
    t = resolved(desk)
    outbox = MemoryOutbox()
    _killed_before_the_commit(desk, t, outbox)
    senders = Senders()
    result = applier(desk, senders, outbox, run_id="r2").apply(plan_of(run_id="r2"))
    assert [o.outcome for o in result.replayed] == ["done"]
    assert "never committed" in result.replayed[0].message
    assert desk.ticket(t.id).confirmation == "pending"
    assert len(senders.sent) == 1 and outbox.load() == {}


def test_killed_before_the_commit_an_action_whose_ticket_changed_since_is_dropped_by_name(
        desk: MemoryDesk) -> None:
    t = resolved(desk)
    outbox = MemoryOutbox()
    _killed_before_the_commit(desk, t, outbox)
    desk.update(TicketChange(ticket_id=t.id, fields={"solution": "a person wrote more"}))
    senders = Senders()
    result = applier(desk, senders, outbox, run_id="r2").apply(plan_of(run_id="r2"))
    (dropped,) = result.replayed
    assert dropped.outcome == "dropped" and f"#{t.id} changed since" in dropped.message
    assert senders.sent == [] and outbox.load() == {}
    assert desk.ticket(t.id).confirmation is None


def test_a_write_that_failed_with_the_desk_down_is_done_by_the_retry(desk: MemoryDesk) -> None:
    t = resolved(desk)
    outbox = MemoryOutbox()
    desk.fail("comment", TransientDeskError("HTTP 503: the desk is down"))
    first = applier(desk, Senders(), outbox).apply(plan_of(ask(t)))
    assert [(o.outcome, o.retry) for o in first.outcomes] == [("failed", True)]
    assert first.retry_failures == first.outcomes
    senders = Senders()
    retry = applier(desk, senders, outbox).apply(plan_of(ask(t)))  # Airflow's retry
    assert [o.outcome for o in retry.outcomes] == ["done"] and retry.retry_failures == []
    assert desk.ticket(t.id).confirmation == "pending" and len(senders.sent) == 1
    assert outbox.load() == {}


def test_a_change_the_desk_refuses_is_failed_but_not_worth_a_retry(desk: MemoryDesk) -> None:
    t = resolved(desk)
    desk.fail("comment", RejectedChange("Confirmation: 'pending' is not a valid value"))
    result = applier(desk, Senders()).apply(plan_of(ask(t)))
    assert [(o.outcome, o.retry) for o in result.outcomes] == [("failed", False)]
    assert result.retry_failures == []


def test_a_message_refused_for_good_is_reported_and_not_retried(desk: MemoryDesk) -> None:
    t = resolved(desk, requester=None)
    action = replace(ask(t), notices=(Notice("confirmation_request", ("desk-user:ghost",),
                                             _context(t)),))
    outbox = MemoryOutbox()
    result = applier(desk, Senders(), outbox).apply(plan_of(action))
    assert result.outcomes[0].outcome == "failed" and "no address" in result.outcomes[0].message
    assert outbox.load() == {}


# --------------------------------------------------------------------------- reopen
def test_reopen_closes_first_then_creates_one_copy_links_it_and_names_it(desk: MemoryDesk
                                                                        ) -> None:
    old = resolved(desk, confirmation="rejected")
    dup = desk.add(Ticket(id="", subject="dup", status="new", priority="high", created=T0,
                          updated=T0, duplicate_of=old.id))
    old = desk.ticket(old.id)
    senders = Senders()
    result = applier(desk, senders).apply(plan_of(reopen(old, moved=(dup.id,))))
    (outcome,) = result.outcomes
    assert outcome.outcome == "done" and outcome.created_id
    copy = desk.ticket(outcome.created_id)
    assert desk.ticket(old.id).close_code == "unsuccessful"
    assert desk.references(copy.id) == {old.id}
    assert desk.ticket(dup.id).duplicate_of == copy.id
    assert f"#{copy.id}" in senders.sent[0].html  # type: ignore[union-attr]


def test_a_stale_reopen_leaves_no_copy_behind(desk: MemoryDesk) -> None:
    old = resolved(desk, confirmation="rejected")
    action = reopen(old)
    desk.edit(old.id, confirmation="confirmed")  # the requester changed their mind
    result = applier(desk, Senders()).apply(plan_of(action))
    assert result.outcomes[0].outcome == "stale"
    assert desk.find_by_key(action.key) is None and desk.ticket(old.id).status == RESOLVED


def test_a_reopen_interrupted_after_the_close_is_finished_by_the_next_run(desk: MemoryDesk
                                                                         ) -> None:
    old = resolved(desk, confirmation="rejected")
    outbox = MemoryOutbox()
    desk.fail("create", TransientDeskError("desk went away"))
    first = applier(desk, Senders(), outbox).apply(plan_of(reopen(old)))
    assert first.outcomes[0].outcome == "failed" and desk.ticket(old.id).status == CLOSED
    senders = Senders()
    second = applier(desk, senders, outbox, run_id="r2").apply(plan_of(run_id="r2"))
    assert [o.outcome for o in second.replayed] == ["done"]
    copy_id = second.replayed[0].created_id
    assert copy_id and desk.find_by_key(reopen(old).key) == copy_id
    assert len(senders.sent) == 1 and outbox.load() == {}


# ------------------------------------------------------------------------- families
def test_a_family_waits_whole_when_its_master_is_stale(desk: MemoryDesk) -> None:
    master = resolved(desk)
    dups = [resolved(desk, duplicate_of=master.id, close_code="other") for _ in range(3)]
    plan = plan_of(close(master), *[cascade(d, master) for d in dups])
    desk.edit(master.id, close_code="changed-by-a-person")
    result = applier(desk, Senders()).apply(plan)
    assert [o.outcome for o in result.outcomes] == ["stale", "waiting", "waiting", "waiting"]
    assert {desk.ticket(d.id).status for d in dups} == {RESOLVED}


def test_a_family_closes_with_the_masters_code(desk: MemoryDesk) -> None:
    master = resolved(desk, close_code="self-healed")
    dups = [resolved(desk, duplicate_of=master.id, close_code="other") for _ in range(3)]
    result = applier(desk, Senders()).apply(plan_of(close(master),
                                                    *[cascade(d, master) for d in dups]))
    assert {o.outcome for o in result.outcomes} == {"done"}
    assert {(desk.ticket(t.id).status, desk.ticket(t.id).close_code)
            for t in [master, *dups]} == {(CLOSED, "self-healed")}


def test_a_duplicate_of_a_master_closed_earlier_closes_on_its_own(desk: MemoryDesk) -> None:
    master = resolved(desk, status=CLOSED)
    dup = resolved(desk, duplicate_of=master.id)
    result = applier(desk, Senders()).apply(plan_of(cascade(dup, master)))
    assert result.outcomes[0].outcome == "done"


# ---------------------------------------------------------------------- emergency shape
def test_a_create_action_creates_once_notes_it_on_the_incident_and_mails(desk: MemoryDesk,
                                                                        tmp_path) -> None:
    incident = resolved(desk, status="in-progress")
    store = LocalStore(tmp_path)  # the report is in the artefact store, named by its key
    store.write_bytes("emergency_report/2026-11-26/EMR-1.html", b"<h1>report</h1>")
    key = action_key("emergency-problem", incident.id)
    action = Action(kind=CREATE, ticket_id=incident.id, step="101.6", rule="emergency.problem",
                    key=key, reason="test",
                    create=TicketDraft(queue="Problems", subject="problem", description="rca",
                                       idempotency_key=key, refers_to=(incident.id,)),
                    comment="问题单 #{created_id} / problem #{created_id}",
                    attachments=({"key": "emergency_report/2026-11-26/EMR-1.html",
                                  "name": "EMR-1.html", "mime": "text/html"},),
                    notices=(Notice("urgent", ("pm@ops.example.cn",),
                                    {**_context(incident), "priority": "紧急", "impact": "重大",
                                     "created": "now", "first_line_cannot_handle": False,
                                     "emergency": False, "commands": {}, "told": "pm"}),))
    senders = Senders()
    first = applier(desk, senders, artefacts=store).apply(plan_of(action))
    created = first.outcomes[0].created_id
    assert first.outcomes[0].outcome == "done" and created
    assert desk.files(created) == {"EMR-1.html": b"<h1>report</h1>"}
    assert any(f"#{created}" in c for c in desk.comments_on(incident.id))
    assert key in desk.ticket(incident.id).automation_keys
    # The task retried with the same plan: nothing twice.
    again = applier(desk, senders, artefacts=store).apply(plan_of(action))
    assert again.outcomes[0].outcome == "skipped"
    assert len(senders.sent) == 1 and desk.find_by_key(key) == created
    assert sum(f"#{created}" in c for c in desk.comments_on(incident.id)) == 1


def test_a_keyed_note_without_a_version_is_written_on_a_fresh_read(desk: MemoryDesk) -> None:
    incident = resolved(desk, status="in-progress")
    action = Action(kind=NOTIFY, ticket_id=incident.id, step="101.1", rule="emergency.start",
                    key="emergency-start:1", reason="test", comment="应急启动 started")
    desk.edit(incident.id, solution="people keep working on it")  # moves the version
    applier(desk, Senders()).apply(plan_of(action))
    applier(desk, Senders()).apply(plan_of(action))
    assert desk.comments_on(incident.id) == ["应急启动 started"]


# --------------------------------------------------------------------------- leases
def test_concurrent_claims_agree_on_one_holder_and_it_runs_out(desk: MemoryDesk,
                                                                clock: Clock) -> None:
    states = [desk.claim_lease("s", f"run-{i}", 30) for i in range(3)]
    assert [s.holder for s in states] == ["run-0"] * 3
    clock.sleep(31)
    assert desk.claim_lease("s", "run-2", 30).holder == "run-2"
    desk.release_lease("s", "run-0")  # not the holder: changes nothing
    assert desk.claim_lease("s", "run-1", 30).holder == "run-2"
    desk.release_lease("s", "run-2")
    assert desk.claim_lease("s", "run-1", 30).holder == "run-1"


def test_a_second_run_defers_while_the_first_holds_the_lease(desk: MemoryDesk,
                                                              clock: Clock) -> None:
    t = resolved(desk)
    first = Lease(desk, "incident_closure", "run-1", ttl=60, clock=clock.monotonic,
                  sleep=clock.sleep)
    first.acquire()
    second = Lease(desk, "incident_closure", "run-2", ttl=60, wait=10, clock=clock.monotonic,
                   sleep=clock.sleep)
    result = applier(desk, Senders(), run_id="run-2", lease=second).apply(plan_of(close(t)))
    assert [o.outcome for o in result.outcomes] == ["deferred"]
    assert desk.ticket(t.id).status == RESOLVED
    first.release()
    second.wait = 0
    assert applier(desk, Senders(), lease=second).apply(plan_of(close(t))).outcomes[0].outcome \
        == "done"


def test_a_dead_holders_lease_is_taken_over_after_it_runs_out(desk: MemoryDesk,
                                                               clock: Clock) -> None:
    Lease(desk, "scope", "zombie", ttl=20, clock=clock.monotonic, sleep=clock.sleep).acquire()
    retry = Lease(desk, "scope", "retry", ttl=20, clock=clock.monotonic, sleep=clock.sleep)
    retry.acquire()  # waits (on the fake clock) until the zombie's claim has run out
    assert retry.held and clock.mono >= 1020


def test_a_holder_that_could_not_renew_stops(desk: MemoryDesk, clock: Clock) -> None:
    lease = Lease(desk, "scope", "slow", ttl=30, clock=clock.monotonic, sleep=clock.sleep)
    lease.acquire()
    clock.sleep(12)
    lease.keep()  # renewed (a third of the ttl had passed)
    clock.sleep(28)
    with pytest.raises(LeaseLost):
        lease.keep()  # most of the ttl without renewal: someone else may hold it


def test_busy_after_waiting_names_the_holder(desk: MemoryDesk, clock: Clock) -> None:
    Lease(desk, "scope", "first", ttl=600, clock=clock.monotonic, sleep=clock.sleep).acquire()
    with pytest.raises(LeaseBusy, match="first"):
        Lease(desk, "scope", "second", ttl=600, wait=5, clock=clock.monotonic,
              sleep=clock.sleep).acquire()


def test_overlapping_appliers_do_every_action_and_send_every_message_once() -> None:
    """Threads race the same plan through the lease on one desk: each action once."""
    desk = MemoryDesk(users={"li.na": "li.na@ops.example.cn"})
    tickets = [resolved(desk) for _ in range(40)]
    plan = plan_of(*[ask(t) for t in tickets[:20]], *[close(t) for t in tickets[20:]])
    senders = Senders()
    outbox = MemoryOutbox()
    results: list[Any] = []

    def run(i: int) -> None:
        lease = Lease(desk, "incident_closure", f"run-{i}", ttl=30)
        results.append(Applier(desk, senders, f"r{i}", outbox=outbox, lease=lease)
                       .apply(plan, {t.id: () for t in tickets}))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert len(results) == 3
    assert sorted(senders.keys()) == sorted(f"{ask(t).key}/0" for t in tickets[:20])
    assert all(len(desk.comments_on(t.id)) == 1 for t in tickets[:20])
    done = [o for r in results for o in r.outcomes if o.outcome == "done"]
    assert len(done) == 40  # every action done by exactly one of the runs


def test_a_slow_desk_gets_smaller_bulk_writes_that_fit_in_a_tenth_of_the_lease(
        desk: MemoryDesk, clock: Clock) -> None:
    tickets = [resolved(desk) for _ in range(250)]
    sizes: list[int] = []
    real = desk.bulk_update

    def slow(changes: Any) -> Any:  # 29 s for 100, as a loaded RT was measured
        sizes.append(len(changes))
        clock.sleep(0.29 * len(changes))
        return real(changes)

    desk.bulk_update = slow  # type: ignore[method-assign]
    lease = Lease(desk, "incident_closure", "run-1", ttl=120, clock=clock.monotonic,
                  sleep=clock.sleep)
    result = applier(desk, Senders(), lease=lease).apply(plan_of(*map(close, tickets)))
    assert {o.outcome for o in result.outcomes} == {"done"}
    # a probe of 10, then 12 s of the 120 s lease at 0.29 s a ticket
    assert sizes == [10, 41, 41, 41, 41, 41, 35]
    assert all(desk.ticket(t.id).status == CLOSED for t in tickets)


def test_every_desk_call_under_a_lease_keeps_it_and_ends_before_it_could_run_out(
        desk: MemoryDesk, clock: Clock) -> None:
    """A holder whose calls drag on renews between them, and stops (deferring the rest)
    when a call took it past the part of the lease it may act in."""
    tickets = [resolved(desk) for _ in range(6)]
    real = desk.comment

    def slow(*args: Any, **kwargs: Any) -> Any:
        clock.sleep(25)  # each single write takes 25 s of a 60 s lease
        return real(*args, **kwargs)

    desk.comment = slow  # type: ignore[method-assign]
    lease = Lease(desk, "incident_closure", "run-1", ttl=60, clock=clock.monotonic,
                  sleep=clock.sleep)
    engine = applier(desk, Senders(), lease=lease)
    result = engine.apply(plan_of(*map(ask, tickets)))
    assert [o.outcome for o in result.outcomes] == ["done"] * 6  # renewed as it went
    assert engine.fenced is not None and engine.fenced.tightest is not None
    assert engine.fenced.tightest >= 0  # no call outlived the lease
    assert desk.calls["claim_lease"] >= 4  # the first claim and renewals between writes


def test_a_message_still_owed_on_the_retry_is_counted_once(desk: MemoryDesk) -> None:
    t = resolved(desk)
    outbox = MemoryOutbox()
    senders = Senders()
    senders.down = 10  # the mail server refuses both attempts
    first = applier(desk, senders, outbox).apply(plan_of(ask(t)))
    assert len(first.undelivered) == 1
    retry = applier(desk, senders, outbox).apply(plan_of(ask(t)))  # the same plan again
    assert [o.outcome for o in retry.replayed] == ["undelivered"]
    assert len(retry.undelivered) == 1  # one message, not one per list it appears in


def test_a_renewal_the_desk_cannot_answer_does_not_stop_the_holder_before_its_time(
        desk: MemoryDesk, clock: Clock) -> None:
    lease = Lease(desk, "incident_closure", "run-1", ttl=60, clock=clock.monotonic,
                  sleep=clock.sleep)
    lease.acquire()
    clock.sleep(25)  # a renewal is due
    desk.fail("claim_lease", TransientDeskError("HTTP 503"), times=5)
    lease.keep()  # not renewed, still ours: 29 s left of the 54 s it may act in
    assert lease.held and 28 < lease.remaining() < 30
    clock.sleep(30)
    with pytest.raises(LeaseUnreachable, match="the desk did not answer"):
        lease.keep()  # past 90 % of the ttl without a renewal: another run may hold it
    assert isinstance(LeaseUnreachable("x"), TransientDeskError)  # a desk outage: retried


def test_an_apply_whose_lease_the_desk_stopped_renewing_fails_as_an_outage(
        desk: MemoryDesk, clock: Clock) -> None:
    """A desk that stops answering mid-apply, first on a renewal: the apply ends with a
    failure to retry (so the task fails and Airflow retries it) instead of green with the
    rest of the plan deferred. On the code before, every later action was only 'deferred'
    and the run ended green (seen in CI: the at-size outage case)."""
    tickets = [resolved(desk) for _ in range(6)]
    real = desk.comment
    writes = {"n": 0}

    def slow(*args: Any, **kwargs: Any) -> Any:
        clock.sleep(25)  # each single write takes 25 s of a 60 s lease
        writes["n"] += 1
        if writes["n"] == 2:  # then the desk answers no more renewals
            desk.fail("claim_lease", TransientDeskError("HTTP 503"), times=100)
        return real(*args, **kwargs)

    desk.comment = slow  # type: ignore[method-assign]
    lease = Lease(desk, "incident_closure", "run-1", ttl=60, clock=clock.monotonic,
                  sleep=clock.sleep)
    result = applier(desk, Senders(), lease=lease).apply(plan_of(*map(ask, tickets)))
    assert 2 <= writes["n"] < 6  # it stopped acting
    failed = [o for o in result.outcomes if o.outcome == "failed"]
    assert failed and "the desk did not answer" in failed[0].message, result.outcomes
    assert result.retry_failures  # so the apply task fails and Airflow retries it
