"""The fault matrix: every pipeline's messages and desk changes happen once, whatever fails.

Each case builds the same desk state through RT's own API (a scenario: an alarm family, an
auto-transfer, a requester to ask, one to remind, a confirmation, a rejection with an open
duplicate, an incomplete fault), runs ``incident_closure`` with a fault injected, then
runs it again until nothing is left to do, and compares the outcome with a clean control
run of the same scenario: the tickets' statuses and close codes, the number of closes and
comments each got in its history, the reopened copies, and every mail by (ticket, action,
recipients). "Lost" is something the control has that the case lacks; "doubled" is
something the case has more often than the control.

The faults: the mail server refusing (451) for a whole run; the task killed (SIGKILL, in a
process of its own) after the bulk closes, after a single action's desk write, between a
reopen's close and its copy, and after the mail server accepted a message; two and three
runs applying the same plan at the same moment; another holder keeping the lease. A person's
edit between fetch and apply, and the urgent, monitor and emergency pipelines with the SMS
gateway answering 5xx and the mail server refusing, are in
``test_exactly_once_edits_and_senders.py`` (another file, so that ``--dist loadfile`` gives
them another worker).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from incident_ops.desk.port import TicketQuery
from incident_ops.model import TicketDraft
from incident_ops.policy.plan import action_key
from tests.support import artefacts
from tests.support.airflow_dags import ensure_pool, run_dag, task_states

pytestmark = [pytest.mark.integration, pytest.mark.dags]

REPO = Path(__file__).resolve().parents[2]
LEASE_SECONDS = "8"  # a killed run's lease runs out in seconds, not minutes
RUN_DEADLINE_S = 240

COMPLETE: dict[str, Any] = {
    "source": "monitoring", "category": "alarm", "system": "billing", "impact": "medium",
    "resolver_role": "l2", "handler_tier": "l2", "solution": "重启计费进程 restarted",
    "close_code": "self-healed", "config_item": "bill-app-01", "dispatched_by_helpdesk": False,
}
DISPATCHED = {"source": "portal", "category": "request", "dispatched_by_helpdesk": True,
              "close_code": "solved", "config_item": None}
# role: (status, fields, master role or None)
SCENARIO: dict[str, tuple[str, dict[str, Any], str | None]] = {
    "alarm": ("resolved", {}, None),
    "alarm_dup": ("resolved", {"close_code": "solved", "solution": None}, "alarm"),
    "alarm_open_dup": ("new", {"close_code": None, "solution": None}, "alarm"),
    "transfer": ("resolved", {"source": "auto-transfer", "category": "fault",
                              "recovered_at": "NOW", "faulty_vendor": "思特奇"}, None),
    "ask": ("resolved", {**DISPATCHED}, None),
    "remind": ("resolved", {**DISPATCHED, "confirmation": "pending",
                            "confirmation_asked_at": "25H_AGO"}, None),
    "confirmed": ("resolved", {**DISPATCHED, "confirmation": "confirmed"}, None),
    "rejected": ("resolved", {**DISPATCHED, "confirmation": "rejected", "handler_tier": "l1",
                              "resolver_role": "l1"}, None),
    "rejected_dup": ("new", {**DISPATCHED, "close_code": None}, "rejected"),
    "bounce": ("resolved", {"category": "fault", "faulty_vendor": None,
                            "recovered_at": None, "resolver_role": "l1",
                            "handler_tier": "l1"}, None),
}
OWNERS = {"rejected": "li.na", "bounce": "zhang.wei"}


@pytest.fixture
def env(airflow_db, desk_url, mailbox, sms_receiver, tmp_path, monkeypatch):
    monkeypatch.setenv("INCIDENT_OPS_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("INCIDENT_OPS_LEASE_SECONDS", LEASE_SECONDS)
    ensure_pool()
    from incident_ops.airflow.provider.desk_hook import ServiceDeskHook

    hook = ServiceDeskHook()
    yield {"desk": hook.get_desk(), "url": desk_url, "mail": mailbox, "sms": sms_receiver,
           "tmp": tmp_path}
    hook.close()


# ------------------------------------------------------------------------- the scenario
def build(env: dict[str, Any]) -> dict[str, str]:
    """The scenario's tickets in the desk (RT's REST API); role -> ticket id."""
    tag = uuid.uuid4().hex[:8]
    now = datetime.now(UTC).replace(microsecond=0)
    ids: dict[str, str] = {}
    for role, (status, over, master) in SCENARIO.items():
        values = {**COMPLETE, "completed_at": now, **over}
        values = {k: (now if v == "NOW" else now - timedelta(hours=25) if v == "25H_AGO"
                      else v) for k, v in values.items()}
        draft = TicketDraft(queue="Incidents", subject=f"[{tag}] {role}",
                            description=f"fault matrix {role}", status=status, priority="high",
                            owner=OWNERS.get(role, "liu.yang"),
                            requester=f"{role}.user@example.cn", fields=values,
                            idempotency_key=f"matrix:{tag}:{role}")
        ids[role] = env["desk"].create(draft)
        if master:
            env["desk"].link_duplicate(ids[role], ids[master])
    return ids


def rest(env: dict[str, Any], path: str, **params: Any) -> Any:
    resp = requests.get(f"{env['url']}/REST/2.0{path}", auth=("root", "password"),
                        params=params, timeout=30)
    resp.raise_for_status()
    return resp.json()


def outcome(env: dict[str, Any], ids: dict[str, str]) -> dict[str, Any]:
    """The scenario's end state, by role: what the desk holds and what was mailed."""
    desk = env["desk"]
    roles = {tid: role for role, tid in ids.items()}
    copies = [t.id for t in desk.search(TicketQuery(
        queue=None, fields={"idempotency_key": action_key("reopen", ids["rejected"])}))]
    for n, cid in enumerate(copies):
        roles[cid] = f"copy{n}"
    state: dict[str, Any] = {"copies": len(copies)}
    for tid, role in roles.items():
        t = desk.get(tid)
        history = rest(env, f"/ticket/{tid}/history", fields="Type,Field,NewValue",
                       per_page=100)["items"]
        closes = sum(1 for h in history if h.get("Type") == "Status"
                     and h.get("NewValue") == "closed")
        comments = sum(1 for h in history if h.get("Type") == "Comment")
        state[role] = {"status": t.status, "close_code": t.close_code,
                       "confirmation": t.confirmation, "closes": closes, "comments": comments,
                       "duplicate_of": roles.get(t.duplicate_of or "", t.duplicate_of)}
    mails: Counter[tuple[str, str, str]] = Counter()
    message_ids: dict[tuple[str, str, str], set[str]] = {}
    for m in env["mail"].messages:
        subject = str(m["Subject"])
        role = next((r for tid, r in roles.items() if f"#{tid} " in subject
                     or subject.endswith(f"#{tid}")), None)
        if role is None:
            continue  # another test's ticket, processed by the same run
        kind = str(m["X-Incident-Ops-Key"]).split(":")[0]
        to = ",".join(sorted(str(m["To"]).replace(" ", "").split(",")))
        mails[(role, kind, to)] += 1
        message_ids.setdefault((role, kind, to), set()).add(str(m["Message-ID"]))
    state["mails"] = dict(mails)
    state["message_ids"] = {k: len(v) for k, v in message_ids.items()}
    return state


def compare(case: dict[str, Any], control: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(lost, doubled) against the control, in words."""
    lost, doubled = [], []
    for key, want in control.items():
        if key in ("mails", "message_ids"):
            continue
        have = case.get(key)
        if have != want:
            (doubled if isinstance(want, dict) and have and have.get("closes", 0) >
             want.get("closes", 0) else lost).append(f"{key}: {have} != control {want}")
    for sig, n in control["mails"].items():
        got = case["mails"].get(sig, 0)
        if got < n:
            lost.append(f"mail {sig}: {got} of {n}")
        elif got > n:
            doubled.append(f"mail {sig}: {got} for {n}")
    doubled += [f"mail {sig}: not in the control" for sig in case["mails"]
                if sig not in control["mails"]]
    return lost, doubled


def until_quiet(runs: int = 2) -> list[Any]:
    """Scheduled runs after the fault: the pipeline catches up by itself."""
    return [run_dag("incident_closure") for _ in range(runs)]


@pytest.fixture(scope="module")
def control_outcome(airflow_db, desk_url, smtp_server, sms_gateway, tmp_path_factory):
    """The scenario through two clean runs: what every fault case must end up with."""
    saved = {k: os.environ.get(k) for k in ("INCIDENT_OPS_REPORTS_DIR",
                                               "INCIDENT_OPS_LEASE_SECONDS")}
    os.environ["INCIDENT_OPS_REPORTS_DIR"] = str(tmp_path_factory.mktemp("control"))
    os.environ["INCIDENT_OPS_LEASE_SECONDS"] = LEASE_SECONDS
    ensure_pool()
    smtp_server.mailbox.clear()
    from incident_ops.airflow.provider.desk_hook import ServiceDeskHook

    try:
        with ServiceDeskHook() as hook:
            env = {"desk": hook.get_desk(), "url": desk_url, "mail": smtp_server.mailbox}
            ids = build(env)
            runs = until_quiet()
            assert all(str(r.state) == "success" for r in runs)
            return outcome(env, ids)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def subprocess_runs(env: dict[str, Any], specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """DAG runs in processes of their own, all at once; each may be killed by its spec."""
    path = os.pathsep.join([str(REPO / "include"), str(REPO), os.environ.get("PYTHONPATH", "")])
    procs = []
    for i, spec in enumerate(specs):
        src, dst = env["tmp"] / f"spec{i}.json", env["tmp"] / f"result{i}.json"
        src.write_text(json.dumps(spec), encoding="utf-8")
        log = (env["tmp"] / f"runner{i}.log").open("wb")
        procs.append((subprocess.Popen(
            [sys.executable, "-m", "tests.support.dag_runner", str(src), str(dst)], cwd=REPO,
            env={**os.environ, "PYTHONPATH": path}, stdout=log, stderr=subprocess.STDOUT),
            dst, log))
    results = []
    for proc, dst, log in procs:
        try:
            code = proc.wait(timeout=RUN_DEADLINE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        finally:
            log.close()
        result = json.loads(dst.read_text()) if dst.exists() else {}
        results.append({**result, "returncode": code})
    return results


def closure_spec(env: dict[str, Any], n: int = 0, **more: Any) -> dict[str, Any]:
    when = datetime.now(UTC) + timedelta(seconds=n)
    return {"dag_id": "incident_closure", "logical_date": when.isoformat(), **more}


def assert_same(env: dict[str, Any], ids: dict[str, str], control: dict[str, Any]) -> None:
    lost, doubled = compare(outcome(env, ids), control)
    assert (lost, doubled) == ([], []), f"lost: {lost}; doubled: {doubled}"


# ---------------------------------------------------------------------- closure faults
def test_a_mail_server_refusing_for_a_whole_run_loses_nothing(env, control_outcome):
    ids = build(env)
    env["mail"].refuse()
    first = run_dag("incident_closure")
    env["mail"].accept()
    states = task_states(first)
    assert states["apply"] == "failed" and states["report"] == "failed", states
    assert env["mail"].refused >= 4  # ask, remind, reopen, bounce: every try refused
    until_quiet()
    assert_same(env, ids, control_outcome)


@pytest.mark.parametrize("point", ["bulk", "commit", "create"])
def test_a_run_killed_in_the_middle_of_apply_loses_nothing(env, control_outcome, point):
    ids = build(env)
    [killed] = subprocess_runs(env, [closure_spec(env, kill={"at": point, "nth": 1})])
    assert killed["returncode"] == -9, killed
    until_quiet()
    assert_same(env, ids, control_outcome)


def test_killed_after_the_server_took_a_mail_it_is_sent_again_under_the_same_message_id(
        env, control_outcome):
    """The one window no sender can close: the server said "accepted" and the process died
    before recording it. The mail goes out again, as the same message (one Message-ID), so
    a mail client shows it once."""
    ids = build(env)
    [killed] = subprocess_runs(env, [closure_spec(env, kill={"at": "sent", "nth": 1})])
    assert killed["returncode"] == -9, killed
    until_quiet()
    case = outcome(env, ids)
    lost, doubled = compare(case, control_outcome)
    assert lost == [] and len(doubled) <= 1, (lost, doubled)
    assert set(case["message_ids"].values()) == {1}  # every mail one Message-ID


@pytest.mark.parametrize("parties", [3])  # two also ran, until CI had to fit 25 minutes
def test_overlapping_runs_do_everything_once(env, control_outcome, parties):
    ids = build(env)
    barrier = {"dir": str(env["tmp"] / "barrier"), "parties": parties}
    runs = subprocess_runs(env, [closure_spec(env, i, barrier=barrier)
                                 for i in range(parties)])
    assert all(r["returncode"] == 0 for r in runs), runs
    until_quiet(1)
    assert_same(env, ids, control_outcome)


def _applied(run: Any) -> dict[str, Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(XComModel).filter(
            XComModel.dag_id == run.dag_id, XComModel.run_id == run.run_id,
            XComModel.task_id == "apply", XComModel.key == "applied").one()
        value = row.value
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def test_a_run_that_found_the_lease_held_shows_apply_skipped_and_leaves_everything(env):
    """Another holder (a run on another scheduler, say) keeps the lease for all of this
    run's wait: this run applies nothing, and says so in the grid (apply skipped) and on its
    plan page (every action deferred), not only in a log line; the next run does it all."""
    import threading

    ids = build(env)
    stop = threading.Event()

    def other_holder() -> None:
        while not stop.is_set():
            env["desk"].claim_lease("incident_closure", "another-scheduler~0", 8)
            stop.wait(1.0)

    holder = threading.Thread(target=other_holder, daemon=True)
    holder.start()
    try:
        first = run_dag("incident_closure")
    finally:
        stop.set()
        holder.join()
        env["desk"].release_lease("incident_closure", "another-scheduler~0")
    states = task_states(first)
    assert states["apply"] == "skipped" and states["report"] == "success", states
    applied = _applied(first)
    mine = [o for o in applied["outcomes"] if o["ticket_id"] in ids.values()]
    assert mine and {o["outcome"] for o in mine} == {"deferred"}
    assert "another-scheduler" in mine[0]["message"]
    from tests.support.airflow_dags import xcom

    page = artefacts.read_text(xcom(first, "report")["report"]["html"])
    assert "deferred" in page
    assert env["desk"].get(ids["alarm"]).status == "resolved"  # nothing was applied
    until_quiet(1)
    assert env["desk"].get(ids["alarm"]).status == "closed"
