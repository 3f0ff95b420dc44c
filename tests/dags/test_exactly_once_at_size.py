"""The fault matrix at real size: hundreds of tickets, several bulk chunks, a long apply.

``test_exactly_once.py`` proves each fault on ten tickets; here the same scenario is loaded
``COPIES`` times into the real desk (RT's own Perl API, in seconds), the closure's bulk writes
go in chunks of ``BULK`` (so a run makes several), and each fault strikes in the middle of an
apply that still has dozens of planned actions ahead of it:

- the run is killed (SIGKILL) after the 12th single desk write, then two ordinary runs;
- the desk answers 503 to everything from the 3rd commented write of apply: Airflow's own
  retry of the failed apply finishes the run;
- the desk stays down for the rest of the run (red), then two ordinary runs;
- a run whose process has another Fernet key comes between two with the right one, while
  mails are owed.

The two outages are in ``test_exactly_once_at_size_outage.py`` (same scenario, control and
comparison, imported from here), so that ``--dist loadfile`` gives them another worker.

Each case ends compared with a clean control run of the same scenario, by what the desk
holds (status, close code, confirmation, duplicate links, reopened copies by idempotency
key) and what the mailbox got (per ticket, action and recipients): **0 missing, 0 doubled**.
``INCIDENT_OPS_MATRIX_COPIES`` makes it bigger (each copy is 8 tickets, every 4th copy 10).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from incident_ops.desk.port import TicketQuery
from incident_ops.policy.plan import action_key
from tests.dags.test_exactly_once import (
    COMPLETE,
    LEASE_SECONDS,
    OWNERS,
    SCENARIO,
    closure_spec,
    subprocess_runs,
)
from tests.support.airflow_dags import ensure_pool, run_dag, task_states

pytestmark = [pytest.mark.integration, pytest.mark.dags]

COPIES = int(os.environ.get("INCIDENT_OPS_MATRIX_COPIES", "12"))
BULK = 20
REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------- the scenario
def roles_of(copy: int) -> list[str]:
    """Every copy has the alarm family, a transfer, a requester to ask, one to remind, a
    confirmation and an incomplete fault; every 4th also a rejection with an open duplicate
    (a reopen is the slowest action: a close, a create, links, a move, mails)."""
    skip = () if copy % 4 == 0 else ("rejected", "rejected_dup")
    return [r for r in SCENARIO if r not in skip]


def build(desk: Any, embedded: Any) -> dict[str, str]:
    """The scenario ``COPIES`` times, loaded with RT's own API; ``role#copy`` -> id."""
    from incident_ops.desk.rt.mapping import write_payload
    from incident_ops.embedded_desk.seed_data import SeedEvent, SeedTicket
    from incident_ops.embedded_desk.seeding import import_records

    tag = uuid.uuid4().hex[:8]
    now = datetime.now(UTC).replace(microsecond=0)
    ranks = {"high": 70}
    records = []
    for copy in range(COPIES):
        for role in roles_of(copy):
            status, over, master = SCENARIO[role]
            values = {**COMPLETE, "completed_at": now - timedelta(minutes=10), **over}
            values = {k: (now - timedelta(minutes=10) if v == "NOW"
                          else now - timedelta(hours=25) if v == "25H_AGO" else v)
                      for k, v in values.items()}
            cfs = {k: tuple(v) if isinstance(v, list) else v for k, v in
                   write_payload(values, ranks)["CustomFields"].items() if v is not None}
            # The last change now: the pipeline's incremental read (since its watermark)
            # must see them, as it sees what people resolve.
            events = () if status == "new" else (SeedEvent(
                at=now, actor="root", status=status,
                owner=OWNERS.get(role, "liu.yang")),)
            records.append(SeedTicket(
                key=f"{tag}-{role}#{copy}", scenario="matrix", queue="Incidents",
                subject=f"[{tag}] {role}#{copy}", description=f"fault matrix {role}",
                priority="high", created=now - timedelta(hours=1), creator="root",
                requestor=f"{role}.{copy}.user@example.cn", fields=cfs, events=events,
                member_of=f"{tag}-{master}#{copy}" if master else None))
    ids = import_records(embedded, records)
    return {key.split("-", 1)[1]: tid for key, tid in ids.items()}


def outcome(desk: Any, ids: dict[str, str], mailbox: Any) -> dict[str, Any]:
    """The end state by role: what the desk holds (one search per 100 tickets) and what was
    mailed, per (role, action, recipients)."""
    roles = {tid: role for role, tid in ids.items()}
    state: dict[str, Any] = {}
    for role, tid in ids.items():
        if role.startswith("rejected#"):
            copies = [t.id for t in desk.search(TicketQuery(
                queue=None, fields={"idempotency_key": action_key("reopen", tid)}))]
            state[f"copies of {role}"] = len(copies)
            roles.update({cid: f"copy of {role}" for cid in copies})
    wanted = sorted(roles, key=int)
    for start in range(0, len(wanted), 100):
        for t in desk.search(TicketQuery(queue=None, ids=wanted[start:start + 100])):
            state[roles[t.id]] = (t.status, t.close_code, t.confirmation,
                                  roles.get(t.duplicate_of or "", t.duplicate_of))
    mails: Counter[tuple[str, str, str]] = Counter()
    for m in mailbox.messages:
        subject = str(m["Subject"])
        role = next((r for tid, r in roles.items() if f"#{tid} " in subject
                     or subject.endswith(f"#{tid}")), None)
        if role is None:
            continue
        to = ",".join(sorted(str(m["To"]).replace(" ", "").split(",")))
        mails[(role, str(m["X-Incident-Ops-Key"]).split(":")[0], to)] += 1
    state["mails"] = mails
    return state


def compare(case: dict[str, Any], control: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(missing, doubled) against the control, in words."""
    missing = [f"{k}: {case.get(k)} != control {v}" for k, v in control.items()
               if k != "mails" and case.get(k) != v and not str(k).startswith("copies")]
    for k, v in control.items():
        if str(k).startswith("copies") and case.get(k) != v:
            (missing if case.get(k, 0) < v else []).append(f"{k}: {case.get(k)} of {v}")
    doubled = [f"{k}: {case[k]} for {v}" for k, v in control.items()
               if str(k).startswith("copies") and case.get(k, 0) > v]
    for sig, n in control["mails"].items():
        got = case["mails"].get(sig, 0)
        if got < n:
            missing.append(f"mail {sig}: {got} of {n}")
        elif got > n:
            doubled.append(f"mail {sig}: {got} for {n}")
    doubled += [f"mail {sig}: not in the control" for sig in case["mails"]
                if sig not in control["mails"]]
    return missing, doubled


def assert_same(case: dict[str, Any], control: dict[str, Any]) -> None:
    missing, doubled = compare(case, control)
    assert (missing, doubled) == ([], []), \
        f"missing {len(missing)}: {missing[:20]}; doubled {len(doubled)}: {doubled[:20]}"


# ------------------------------------------------------------------------ the harness
@pytest.fixture(scope="module")
def sized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The project's configuration with bulk writes of ``BULK``: several chunks per run."""
    folder = tmp_path_factory.mktemp("config")
    config = folder / "config"
    shutil.copytree(REPO / "include" / "config", config)
    closure = yaml.safe_load((config / "closure.yaml").read_text(encoding="utf-8"))
    closure["bulk_size"] = BULK
    (config / "closure.yaml").write_text(yaml.safe_dump(closure, allow_unicode=True),
                                         encoding="utf-8")
    # The watermark's clock-skew margin (60 s) re-reads what changed in the last minute:
    # runs seconds apart would see a lost action again by that chance. In production the next
    # run comes minutes later (the issue's +10 min), so the margin here is 1 s.
    saved = {k: os.environ.get(k) for k in ("INCIDENT_OPS_CONFIG_DIR",
                                               "INCIDENT_OPS_REPORTS_DIR",
                                               "INCIDENT_OPS_LEASE_SECONDS",
                                               "INCIDENT_OPS_CLOCK_SKEW_SECONDS")}
    os.environ.update({"INCIDENT_OPS_CONFIG_DIR": str(config),
                       "INCIDENT_OPS_REPORTS_DIR": str(folder / "reports"),
                       "INCIDENT_OPS_LEASE_SECONDS": LEASE_SECONDS,
                       "INCIDENT_OPS_CLOCK_SKEW_SECONDS": "1"})
    yield config
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def control(sized, airflow_db, desk_url, embedded_desk, smtp_server, sms_gateway):
    """The scenario at size through clean runs until quiet: what every case must end with."""
    ensure_pool()
    from incident_ops.airflow.provider.desk_hook import ServiceDeskHook

    smtp_server.mailbox.clear()
    with ServiceDeskHook() as hook:
        desk = hook.get_desk()
        ids = build(desk, embedded_desk)
        runs = [run_dag("incident_closure") for _ in range(2)]
        assert all(str(r.state) == "success" for r in runs), [task_states(r) for r in runs]
        state = outcome(desk, ids, smtp_server.mailbox)
    assert sum(state["mails"].values()) >= COPIES * 3  # ask, remind, bounce per copy
    return state


@pytest.fixture
def env(sized, control, airflow_db, desk_url, embedded_desk, mailbox, sms_receiver,
        tmp_path):
    from incident_ops.airflow.provider.desk_hook import ServiceDeskHook

    ensure_pool()
    hook = ServiceDeskHook()
    yield {"desk": hook.get_desk(), "url": desk_url, "mail": mailbox, "tmp": tmp_path,
           "embedded": embedded_desk}
    hook.close()


def case_state(env: dict[str, Any], ids: dict[str, str]) -> dict[str, Any]:
    return outcome(env["desk"], ids, env["mail"])


def owed() -> dict[str, Any]:
    """The closure's outbox: what planned actions still owe (the Variable, as stored)."""
    from airflow.models.variable import Variable

    return json.loads(Variable.get("incident_ops.outbox.incident_closure", default_var="{}"))


# ----------------------------------------------------------------------------- cases
def test_killed_in_the_middle_of_a_long_apply_the_next_runs_do_everything_once(env, control):
    ids = build(env["desk"], env["embedded"])
    # the 12th of ~30 single writes: the bulk chunks are done, most singles still ahead
    [killed] = subprocess_runs(env, [closure_spec(env, kill={"at": "commit", "nth": 12})])
    assert killed["returncode"] == -9, killed
    assert len(owed()) >= 10  # the kill left planned actions in flight (never committed)
    reruns = [run_dag("incident_closure") for _ in range(2)]
    assert all(str(r.state) == "success" for r in reruns), [task_states(r) for r in reruns]
    assert owed() == {}
    assert_same(case_state(env, ids), control)


def _desk_through_proxy(env: dict[str, Any], monkeypatch: Any) -> Any:
    """The DAG runs' desk connection through the fault proxy (the tests' checks go direct)."""
    from tests.support.fault_proxy import FaultProxy

    proxy = FaultProxy(env["url"])
    proxy.__enter__()
    conn = json.loads(os.environ["AIRFLOW_CONN_SERVICEDESK_DEFAULT"])
    conn["host"] = proxy.url
    monkeypatch.setenv("AIRFLOW_CONN_SERVICEDESK_DEFAULT", json.dumps(conn))
    return proxy


def _outage_after(monkeypatch: Any, proxy: Any, writes: int, *, whole_run: bool) -> None:
    """After the ``writes``-th single desk write of the run, the desk answers 503 to every
    request (reads, writes, lease renewals) until the first apply attempt has ended
    (``whole_run``: for the rest of the run)."""
    from incident_ops.airflow.tasks import pipeline
    from incident_ops.desk.rt.adapter import RequestTrackerDesk

    real_comment, real_apply = RequestTrackerDesk.comment, pipeline.apply_task
    counted = itertools.count(1)  # apply writes from several threads: next() is atomic

    def comment(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = real_comment(self, *args, **kwargs)
        if next(counted) == writes:  # a `+=` then a read let two threads both see 4
            proxy.inject("status", times=1_000_000, status=503)
        return result

    def apply_task(*args: Any, **kwargs: Any) -> Any:
        try:
            return real_apply(*args, **kwargs)
        finally:
            if not whole_run:
                proxy.clear()  # the desk is back for Airflow's retry of apply

    monkeypatch.setattr(RequestTrackerDesk, "comment", comment)
    monkeypatch.setattr(pipeline, "apply_task", apply_task)


def test_a_run_with_another_fernet_key_stops_before_acting_and_overwrites_nothing(
        env, control):
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    ids = build(env["desk"], env["embedded"])
    env["mail"].refuse()
    first = run_dag("incident_closure")  # desk changes committed, every mail owed
    env["mail"].accept()
    assert task_states(first)["apply"] == "failed"

    def stored() -> str:
        with create_session() as session:
            row = session.query(Variable).filter_by(
                key="incident_ops.outbox.incident_closure").one()
            return str(row._val)

    owed = stored()
    assert json.loads(Variable.get("incident_ops.outbox.incident_closure"))  # mails owed
    from cryptography.fernet import Fernet

    other_key = {"AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode()}
    [wrong] = subprocess_runs(env, [{**closure_spec(env), "env": other_key}])
    assert wrong["returncode"] == 0 and wrong.get("state") == "failed", wrong
    # The watermark is unreadable too: the plan task stops, before any read of the desk.
    assert wrong["states"]["plan"] == "failed", wrong
    assert wrong["states"]["apply"] in ("upstream_failed", "failed"), wrong
    assert env["mail"].messages == []  # nothing sent under the wrong key
    assert stored() == owed  # and the outbox was not overwritten
    run_dag("incident_closure")  # the right key again: what was owed goes out, once
    assert_same(case_state(env, ids), control)
