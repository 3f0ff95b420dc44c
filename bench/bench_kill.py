"""Benchmark: ``incident_closure`` killed (SIGKILL) in the middle of apply on the 2,000-ticket
sample desk, then ordinary re-runs, compared with a clean control on an identical desk.

    PYTHONPATH=include:. .venv/bin/python bench/bench_kill.py [--count 2000] [--seed 42]
        [--kill-at sent|commit|bulk|create] [--kill-nth 20] [--mail-delay 0.2]
        [--reruns 3] [--seed-both] [--keep] [--workdir /tmp/bench-kill-...]

What it does (issue 24):

1. two private embedded desks (each its own workdir under /tmp and a free port, never the
   demo's ``.desk``) holding identical tickets: the sample data of
   ``python -m incident_ops.embedded_desk seed --count 2000`` (``seeding.seed_desk``, one
   RNG seed and one fixed "now"). The first desk is seeded through the Perl loader (minutes;
   progress and time printed); the second gets a copy of its SQLite database (``rt.db``, as
   the test harness copies its template), unless ``--seed-both`` seeds it the same way;
2. per desk: its own Airflow home (a migrated SQLite metadata DB, its own Fernet key), an
   SMTP sink (aiosmtpd, ``tests/support/mail.py``) that answers each DATA after
   ``--mail-delay`` seconds, as a loaded mail server does, and an SMS receiver
   (``tests/support/sms.py``); the desk lease's time-to-live is 8 s
   (``INCIDENT_OPS_LEASE_SECONDS``) so a killed run's lease runs out in seconds;
3. runs ``incident_closure`` with ``dag.test()`` in a process of its own
   (``python -m tests.support.dag_runner``, as ``tests/dags/test_exactly_once.py`` does):
   the control ``--reruns`` times on the first desk; on the second desk the first run is
   SIGKILLed at the ``--kill-nth`` time it reaches ``--kill-at`` (default: just after the
   SMTP server accepted the 20th mail, before it is struck off), then ``--reruns`` ordinary
   runs (two to finish, one more to show the pipeline is quiet). Control and case runs
   alternate, so both desks are judged at nearly the same wall-clock time;
4. prints the killed run's plan (planned actions by kind), what it did before it died (the
   tickets whose ``Automation`` field names it, the mails received), then per category for
   case vs control: tickets closed, confirmation requests asked (100.7.2), helpdesk
   reminders, incomplete records bounced (100.6), rejected incidents reopened (100.7.3,
   copies by idempotency key), mails and SMS received; and **missing** (what the control has
   that the case lacks) and **doubled** (what the case has more often). Desk states are read
   through RT's REST2 (ticket searches with their custom fields, transactions written after
   seeding); seeded ticket ids are identical on both desks, created copies are matched by
   their idempotency key, mails by (ticket, ``X-Incident-Ops-Key``, recipients). A mail sent
   again under the same ``Message-ID`` (the kill right after the server accepted it: the
   one window no sender can close, docs/exactly-once.md) is counted as doubled and shown
   separately.

Numbers are printed, never asserted. Exit status 0 when missing = doubled = 0 apart from
re-sends under the same Message-ID, 1 otherwise. Every process it starts (desks, servers,
DAG runs) is stopped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "include"), str(REPO)]

import requests  # noqa: E402

from incident_ops.embedded_desk import EmbeddedDesk  # noqa: E402
from incident_ops.embedded_desk.seeding import seed_desk  # noqa: E402
from tests.support import FROM_EMAIL  # noqa: E402
from tests.support.mail import SmtpTestServer, _Handler  # noqa: E402
from tests.support.sms import SmsReceiver  # noqa: E402

DAG_ID = "incident_closure"
LEASE_SECONDS = "8"  # a killed run's lease runs out in seconds, not minutes
RUN_DEADLINE_S = 1800.0
# Fields that name a run or a moment of it: compared as present / absent only.
RUN_SPECIFIC = {"Automation"}
MOMENTS = {"Confirmation Asked At", "Escalation Due"}
CATEGORIES = (("ask", "confirmation requests asked (100.7.2)"),
              ("remind", "help desk reminded (100.7.2)"),
              ("bounce", "incomplete records bounced (100.6)"),
              ("reopen", "rejected incidents reopened (100.7.3)"))
TICKET_IN_SUBJECT = re.compile(r"#(\d+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def say(text: str = "") -> None:
    print(text, flush=True)


# ------------------------------------------------------------------------- the SMTP sink
class SlowHandler(_Handler):
    """The test SMTP server's handler, answering each DATA after ``delay`` seconds."""

    def __init__(self, mailbox: Any, delay: float) -> None:
        super().__init__(mailbox)
        self.delay = delay

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        import asyncio

        if self.delay > 0:
            await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


def slow_smtp_server(delay: float) -> SmtpTestServer:
    from aiosmtpd.controller import Controller

    server = SmtpTestServer()
    server._controller = Controller(SlowHandler(server.mailbox, delay), hostname=server.host,
                                    port=server.port, enable_SMTPUTF8=True)
    return server.start()


# ----------------------------------------------------------------------------- one side
@dataclass
class Side:
    name: str
    root: Path
    desk: EmbeddedDesk
    smtp: SmtpTestServer | None = None
    sms: SmsReceiver | None = None
    env: dict[str, str] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def home(self) -> Path:
        return self.root / "airflow"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def logs(self) -> Path:
        return self.root / "runs"

    def airflow_env(self) -> dict[str, str]:
        """As tests/conftest.py sets it up, for this side's home, desk and servers."""
        assert self.smtp is not None and self.sms is not None
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_", "AIRFLOW__"))}
        env.pop("INCIDENT_OPS_ALERT_TO", None)
        conn = {"conn_type": "servicedesk", "host": self.desk.url, "login": self.desk.user,
                "password": self.desk.password,
                "extra": {"backend": "rt5", "timeout": 30, "page_size": 100,
                          "max_concurrency": 4}}
        env.update({
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
            "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "INCIDENT_OPS_RETRY_DELAY_SECONDS": "1",
            "INCIDENT_OPS_URGENT_DEADLINE_MINUTES": "0",
            "INCIDENT_OPS_CLOSURE_DEADLINE_MINUTES": "0",
            "INCIDENT_OPS_REPORTS_DIR": str(self.reports),
            "INCIDENT_OPS_LEASE_SECONDS": LEASE_SECONDS,
            "AIRFLOW_CONN_SERVICEDESK_DEFAULT": json.dumps(conn),
            "AIRFLOW_CONN_SMTP_DEFAULT": self.smtp.connection_uri(FROM_EMAIL),
            "AIRFLOW_CONN_SMS_DEFAULT": self.sms.connection_json(),
            "PYTHONPATH": os.pathsep.join([str(REPO / "include"), str(REPO)]),
        })
        return env

    def airflow_db(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.home / 'airflow.db'}?mode=ro", uri=True, timeout=30)


def prepare_airflow(side: Side) -> float:
    """A freshly migrated metadata DB and the desk pool, in a process with the side's env."""
    side.home.mkdir(parents=True, exist_ok=True)
    side.logs.mkdir(parents=True, exist_ok=True)
    side.env = side.airflow_env()
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", "from airflow.utils import db; db.resetdb()\n"
         "from tests.support.airflow_dags import ensure_pool; ensure_pool()"],
        cwd=REPO, env=side.env, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{side.name}: Airflow DB setup failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def _json(value: Any) -> Any:
    while isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return value


def xcom(side: Side, run_id: str, task_id: str, key: str = "return_value") -> Any:
    with side.airflow_db() as conn:
        row = conn.execute("SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND "
                           "task_id = ? AND key = ?", (DAG_ID, run_id, task_id, key)).fetchone()
    return _json(row[0]) if row else None


def run_dag(side: Side, n: int, kill: dict[str, Any] | None = None) -> dict[str, Any]:
    """One ``incident_closure`` run in its own process (``tests.support.dag_runner``)."""
    spec: dict[str, Any] = {"dag_id": DAG_ID, "logical_date": datetime.now(UTC).isoformat()}
    if kill:
        spec["kill"] = kill
    src, dst = side.logs / f"spec{n}.json", side.logs / f"result{n}.json"
    log_path = side.logs / f"run{n}.log"
    src.write_text(json.dumps(spec), encoding="utf-8")
    mails_before = len(side.smtp.mailbox) if side.smtp else 0
    t0 = time.perf_counter()
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "tests.support.dag_runner", str(src),
                                 str(dst)], cwd=REPO, env=side.env, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            code = proc.wait(timeout=RUN_DEADLINE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = None
    seconds = time.perf_counter() - t0
    with side.airflow_db() as conn:
        row = conn.execute("SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id "
                           "DESC LIMIT 1", (DAG_ID,)).fetchone()
        run_id, state = (row[0], row[1]) if row else ("?", "?")
        states = dict(conn.execute("SELECT task_id, state FROM task_instance WHERE dag_id = ? "
                                   "AND run_id = ?", (DAG_ID, run_id)).fetchall())
        tries = dict(conn.execute("SELECT task_id, try_number FROM task_instance WHERE "
                                  "dag_id = ? AND run_id = ?", (DAG_ID, run_id)).fetchall())
    result = json.loads(dst.read_text()) if dst.exists() else {}
    run = {"n": n, "side": side.name, "run_id": run_id, "state": result.get("state", state),
           "states": result.get("states", states), "tries": tries, "returncode": code,
           "seconds": seconds, "log": str(log_path), "killed": bool(kill),
           "mails": (len(side.smtp.mailbox) if side.smtp else 0) - mails_before,
           "planned": xcom(side, run_id, "plan"), "applied": xcom(side, run_id, "apply",
                                                                  "applied"),
           "report": xcom(side, run_id, "report")}
    side.runs.append(run)
    return run


def describe_run(run: dict[str, Any]) -> None:
    planned = run["planned"] or {}
    actions = (planned.get("plan") or {}).get("actions") or []
    kinds = Counter(a["kind"] for a in actions)
    applied = run["applied"] or {}
    outcomes = Counter(f"{o['kind']} {o['outcome']}" for o in applied.get("outcomes") or [])
    replayed = Counter(f"{o['kind']} {o['outcome']}" for o in applied.get("replayed") or [])
    end = ("KILLED (SIGKILL)" if run["returncode"] == -9 else
           "TIMED OUT" if run["returncode"] is None else f"exit {run['returncode']}")
    say(f"  {run['side']} run {run['n']}: {run['seconds']:.0f} s, {end}, run {run['state']} "
        f"({run['run_id']}); tasks {run['states']}; tries {run['tries']}")
    say(f"    planned {len(actions)}: {dict(sorted(kinds.items())) or 'nothing'}; mails "
        f"received during the run {run['mails']}")
    if run["applied"] is not None:
        say(f"    outcomes: {dict(sorted(outcomes.items())) or 'none'}")
        say(f"    carried over from earlier runs: {dict(sorted(replayed.items())) or 'none'}; "
            f"undelivered {len(applied.get('undelivered') or [])}")
    elif not run["killed"]:
        say("    (no apply record)")
    say(f"    log: {run['log']}")


# ------------------------------------------------------------------------- reading a desk
def rest_session(desk: EmbeddedDesk) -> requests.Session:
    session = requests.Session()
    session.auth = desk.auth
    session.headers["Accept"] = "application/json"
    # A web-session cookie: REST2 checks the password (bcrypt) on every call without it.
    session.post(desk.url + "/NoAuth/Login.html", data={"user": desk.user,
                                                        "pass": desk.password},
                 allow_redirects=False, timeout=60)
    return session


def _search(session: requests.Session, url: str, query: str, fields: str,
            extra: list[tuple[str, str]] | None = None) -> list[dict[str, Any]]:
    """Every item of a REST2 search, keyset-paged on id (100 a page)."""
    out: list[dict[str, Any]] = []
    after = 0
    while True:
        params = [("query", f"({query}) AND id > {after}"), ("page", "1"), ("per_page", "100"),
                  ("fields", fields), ("orderby", "id"), ("order", "ASC"), *(extra or [])]
        resp = session.get(url, params=params, timeout=300)
        resp.raise_for_status()
        items = [i for i in resp.json().get("items") or [] if isinstance(i, dict)]
        out += items
        if len(items) < 100:
            return out
        after = int(items[-1]["id"])


def _name(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("Name") or value.get("id") or "")
    return str(value or "")


def read_desk(desk: EmbeddedDesk, tx_mark: int) -> dict[str, Any]:
    """Every ticket but the Automation queue's (status, owner, queue, custom fields) and the
    ticket transactions written after ``tx_mark`` (the end of seeding), through REST2."""
    session = rest_session(desk)
    api = desk.rest_url
    try:
        items = _search(session, api + "/tickets", "Queue != 'Automation'",
                        "Subject,Status,Owner,Queue,CustomFields",
                        [("fields[Queue]", "Name"), ("fields[Owner]", "Name")])
        tickets: dict[str, dict[str, Any]] = {}
        for item in items:
            cfs: dict[str, tuple[str, ...]] = {}
            for cf in item.get("CustomFields") or []:
                values = tuple(sorted(str(v) for v in cf.get("values") or [] if v not in
                                      (None, "")))
                if values:
                    cfs[str(cf.get("name"))] = values
            tickets[str(item["id"])] = {"Subject": item.get("Subject"),
                                        "Status": item.get("Status"),
                                        "Owner": _name(item.get("Owner")),
                                        "Queue": _name(item.get("Queue")), "cf": cfs}
        txs = _search(session, api + "/transactions",
                      f"ObjectType = 'RT::Ticket' AND id > {tx_mark} AND (Type = 'Status' OR "
                      "Type = 'Comment' OR Type = 'Correspond' OR Type = 'Create')",
                      "ObjectId,Type,Field,NewValue")
    finally:
        session.close()
    history: dict[str, Counter[str]] = defaultdict(Counter)
    for tx in txs:
        tid = str(tx.get("ObjectId"))
        kind = str(tx.get("Type"))
        if kind == "Status":
            kind = f"Status->{tx.get('NewValue')}"
        history[tid][kind] += 1
    return {"tickets": tickets, "history": history}


def canonical(snapshot: dict[str, Any], seeded: set[str]) -> dict[str, str]:
    """Ticket id -> a name that is the same on both desks: seeded tickets keep their id
    (seeding is deterministic), created ones are named by their idempotency key."""
    names: dict[str, str] = {}
    for tid, t in snapshot["tickets"].items():
        if tid in seeded:
            names[tid] = tid
        else:
            key = (t["cf"].get("Idempotency Key") or ("",))[0]
            names[tid] = f"copy[{key}]" if key else f"new[{t['Subject']}]"
    return names


def keys_of(t: dict[str, Any]) -> tuple[str, ...]:
    return t["cf"].get("Automation Keys") or ()


def mail_records(server: SmtpTestServer, names: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    for mail in server.mailbox.received:
        m = mail.message
        subject = str(m.get("Subject", ""))
        found = TICKET_IN_SUBJECT.search(subject)
        tid = found.group(1) if found else ""
        out.append({"ticket": names.get(tid, f"#{tid}" if tid else "?"),
                    "key": str(m.get("X-Incident-Ops-Key", "")),
                    "to": ",".join(sorted(r.lower() for r in mail.envelope_to)),
                    "message_id": str(m.get("Message-ID", "")), "subject": subject})
    return out


def outcome(side: Side, seeded: set[str], tx_mark: int) -> dict[str, Any]:
    """The side's end state in desk-independent names."""
    snap = read_desk(side.desk, tx_mark)
    names = canonical(snap, seeded)
    state: dict[str, dict[str, Any]] = {}
    copies: Counter[str] = Counter()
    for tid, t in snap["tickets"].items():
        name = names[tid]
        if name.startswith(("copy[", "new[")):
            copies[name] += 1
        cfs = {k: (("<set>",) if k in MOMENTS else v) for k, v in t["cf"].items()
               if k not in RUN_SPECIFIC}
        state.setdefault(name, {"Status": t["Status"], "Owner": t["Owner"],
                                "Queue": t["Queue"], **cfs})
    history: dict[str, Counter[str]] = defaultdict(Counter)
    for tid, counts in snap["history"].items():
        if tid in names:
            history[names[tid]].update(counts)
    mails = mail_records(side.smtp, names) if side.smtp else []
    sms = [r.header("Idempotency-Key") or "" for r in side.sms.delivered] if side.sms else []
    cats: dict[str, dict[str, int]] = {}
    tickets = snap["tickets"]
    for kind, _ in CATEGORIES:
        with_key = [t for t in tickets.values() if any(k.startswith(kind + ":")
                                                       for k in keys_of(t))]
        cats[kind] = {"tickets": len(with_key),
                      "mails": sum(1 for m in mails if m["key"].startswith(kind + ":"))}
    reopen_copies = [n for n in copies.elements() if n.startswith("copy[reopen:")]
    cats["reopen"]["copies"] = len(reopen_copies)
    cats["reopen"]["distinct copies"] = len(set(reopen_copies))
    closed_now = sum(1 for t in tickets.values() if t["Status"] == "closed")
    closes = sum(c.get("Status->closed", 0) for c in history.values())
    return {"state": state, "history": history, "copies": copies, "mails": mails,
            "sms": sms, "cats": cats, "closed": closed_now, "closes": closes,
            "tickets": len(tickets), "names": names}


def compare(case: dict[str, Any], control: dict[str, Any]) -> dict[str, list[str]]:
    """missing (control has, case lacks), doubled (case has more often), and the doubled
    mails that went out again under the same Message-ID, in words."""
    missing: list[str] = []
    doubled: list[str] = []
    same_id: list[str] = []
    differs: list[str] = []
    for name in sorted(set(control["state"]) | set(case["state"]), key=_order):
        want, have = control["state"].get(name), case["state"].get(name)
        if want is None:
            doubled.append(f"ticket {name}: only in the case ({have})")
            continue
        if have is None:
            missing.append(f"ticket {name}: only in the control ({want})")
            continue
        for fld in sorted(set(want) | set(have)):
            w, h = want.get(fld), have.get(fld)
            if w == h:
                continue
            if fld == "Automation Keys":
                lacks = sorted(set(w or ()) - set(h or ()))
                extra = sorted(set(h or ()) - set(w or ()))
                if lacks:
                    missing.append(f"ticket {name}: keys {lacks} not on the case desk")
                if extra:
                    doubled.append(f"ticket {name}: keys {extra} only on the case desk")
            else:
                differs.append(f"ticket {name}: {fld} {h!r} (case) != {w!r} (control)")
    for name in sorted(set(control["copies"]) | set(case["copies"]), key=_order):
        w, h = control["copies"].get(name, 0), case["copies"].get(name, 0)
        if h > w:
            doubled.append(f"{name}: {h} tickets for {w}")
    for name in sorted(set(control["history"]) | set(case["history"]), key=_order):
        w, h = control["history"].get(name, Counter()), case["history"].get(name, Counter())
        for kind in sorted(set(w) | set(h)):
            if h[kind] < w[kind]:
                missing.append(f"ticket {name}: {kind} x{h[kind]} of {w[kind]}")
            elif h[kind] > w[kind]:
                doubled.append(f"ticket {name}: {kind} x{h[kind]} for {w[kind]}")
    want_m = Counter((m["ticket"], m["key"], m["to"]) for m in control["mails"])
    have_m = Counter((m["ticket"], m["key"], m["to"]) for m in case["mails"])
    ids: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for m in case["mails"]:
        ids[(m["ticket"], m["key"], m["to"])].add(m["message_id"])
    for sig in sorted(set(want_m) | set(have_m)):
        w, h = want_m[sig], have_m[sig]
        text = f"mail (ticket {sig[0]}, {sig[1]}, to {sig[2]}): {h} for {w}"
        if h < w:
            missing.append(text)
        elif h > w:
            (same_id if w and len(ids[sig]) == 1 else doubled).append(
                text + (f", one Message-ID {next(iter(ids[sig]))}" if len(ids[sig]) == 1
                        else f", {len(ids[sig])} Message-IDs"))
    want_s, have_s = Counter(control["sms"]), Counter(case["sms"])
    for key in sorted(set(want_s) | set(have_s)):
        if have_s[key] < want_s[key]:
            missing.append(f"SMS {key}: {have_s[key]} of {want_s[key]}")
        elif have_s[key] > want_s[key]:
            same_id.append(f"SMS {key}: {have_s[key]} for {want_s[key]} (one Idempotency-Key)")
    # A field that differs is something the control has that the case lacks (or the case
    # has in its place): counted as missing, listed with both values.
    return {"missing": missing + differs, "doubled": doubled, "same_id": same_id}


def _order(name: str) -> tuple[int, str]:
    return (int(name), "") if name.isdigit() else (1 << 40, name)


# ---------------------------------------------------------------------------------- main
def db_mark(desk: EmbeddedDesk) -> int:
    with sqlite3.connect(f"file:{desk.db_path}?mode=ro", uri=True, timeout=30) as conn:
        return int(conn.execute("SELECT max(id) FROM Transactions").fetchone()[0] or 0)


def seed_with_progress(desk: EmbeddedDesk, count: int, seed: int, now: datetime) -> float:
    before = desk.ticket_count() or 0
    done = threading.Event()
    t0 = time.perf_counter()

    def progress() -> None:
        while not done.wait(30):
            n = (desk.ticket_count() or 0) - before
            say(f"  seeding {desk.workdir.name}: {n} of {count} tickets after "
                f"{time.perf_counter() - t0:.0f} s")

    watcher = threading.Thread(target=progress, daemon=True)
    watcher.start()
    try:
        result = seed_desk(desk, count=count, seed=seed, now=now, timeout_s=3600)
    finally:
        done.set()
    seconds = time.perf_counter() - t0
    say(f"  seeded {result.get('count')} tickets in {seconds:.0f} s "
        f"({result.get('tickets_per_s')} tickets/s), ids {result.get('first_id')}-"
        f"{result.get('last_id')}, {result.get('warnings')} loader warnings")
    return seconds


def copy_desk(src: EmbeddedDesk, dst: EmbeddedDesk) -> None:
    """The seeded database for a second desk, as the test harness copies its template: the
    SQLite file (and its WAL, if any) with the provisioning and seeding markers."""
    dst.workdir.mkdir(parents=True, exist_ok=True)
    for name in ("rt.db", "rt.db-wal", "rt.db-shm", "provisioned.json", "seeded.json",
                 "seed-ids.jsonl"):
        if (src.workdir / name).exists():
            shutil.copy2(src.workdir / name, dst.workdir / name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--kill-at", default="sent", choices=["sent", "commit", "bulk",
                                                              "create"])
    parser.add_argument("--kill-nth", type=int, default=20)
    parser.add_argument("--mail-delay", type=float, default=0.2,
                        help="seconds the SMTP sink takes to answer each DATA")
    parser.add_argument("--reruns", type=int, default=3,
                        help="ordinary runs after the killed one (and control runs)")
    parser.add_argument("--seed-both", action="store_true",
                        help="seed the second desk too instead of copying the first's DB")
    parser.add_argument("--workers", type=int, default=2, help="rt-server workers per desk")
    parser.add_argument("--workdir", default="", help="default: a fresh dir under /tmp")
    parser.add_argument("--keep", action="store_true", help="leave desks and files behind")
    args = parser.parse_args(argv)

    root = Path(args.workdir or tempfile.mkdtemp(prefix="bench-kill-", dir="/tmp")).resolve()
    if root == (REPO / ".desk").resolve() or str(root).startswith(str(REPO)):
        raise SystemExit("the bench's workdir must lie outside the repository (not .desk)")
    sides = [Side("control", root / "control",
                  EmbeddedDesk(root / "control" / "desk", port=free_port(),
                               workers=args.workers)),
             Side("case", root / "case",
                  EmbeddedDesk(root / "case" / "desk", port=free_port(),
                               workers=args.workers))]
    say(f"bench_kill: workdir {root}; {args.count} sample tickets (seed {args.seed}); kill at "
        f"{args.kill_at!r} #{args.kill_nth}; SMTP answers each mail after "
        f"{args.mail_delay} s; lease {LEASE_SECONDS} s")
    t_start = time.perf_counter()
    try:
        return run(sides, args)
    finally:
        if not args.keep:
            for side in sides:
                for stop in (side.desk.stop, side.smtp.stop if side.smtp else None,
                             side.sms.stop if side.sms else None):
                    if stop is None:
                        continue
                    try:
                        stop()
                    except Exception as exc:  # noqa: BLE001 - stop the rest anyway
                        say(f"  stopping {side.name}: {exc}")
            say(f"stopped the desks and servers; files left in {root}")
        say(f"total {time.perf_counter() - t_start:.0f} s")


def run(sides: list[Side], args: argparse.Namespace) -> int:
    control, case = sides
    now = datetime.now(UTC).replace(second=0, microsecond=0)

    # 1. two identical desks
    say(f"== seeding (now = {now.isoformat()})")
    control.desk.workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    control.desk.provision()
    say(f"  provisioned {control.desk.workdir} in {time.perf_counter() - t0:.1f} s")
    seed_s = seed_with_progress(control.desk, args.count, args.seed, now)
    if args.seed_both:
        case.desk.workdir.mkdir(parents=True, exist_ok=True)
        case.desk.provision()
        seed_s += seed_with_progress(case.desk, args.count, args.seed, now)
        how = "seeded both desks the same way"
    else:
        copy_desk(control.desk, case.desk)
        how = "seeded the control desk; the case desk got a copy of its SQLite DB"
    marks = [db_mark(s.desk) for s in sides]
    counts = [s.desk.ticket_count() for s in sides]
    say(f"  {how}: tickets {counts}, last transaction {marks}; seeding {seed_s:.0f} s")
    if marks[0] != marks[1] or counts[0] != counts[1]:
        say("  WARNING: the two desks differ after seeding")
    tx_mark = min(marks)
    seeded = {str(json.loads(line)["id"]) for line in
              (control.desk.workdir / "seed-ids.jsonl").read_text().splitlines() if line}

    # 2. desks, servers, Airflow homes
    for side in sides:
        t0 = time.perf_counter()
        side.desk.start(stop_with_parent=True)
        side.smtp = slow_smtp_server(args.mail_delay)
        side.sms = SmsReceiver().start()
        af = prepare_airflow(side)
        say(f"  {side.name}: desk {side.desk.url} ({side.desk.workdir}) up in "
            f"{time.perf_counter() - t0 - af:.1f} s; SMTP 127.0.0.1:{side.smtp.port}; SMS "
            f"{side.sms.url}; Airflow home {side.home} ({af:.0f} s)")

    # 3. the runs: control and case alternate, so both are judged at about the same time
    say("== runs")
    kill = {"at": args.kill_at, "nth": args.kill_nth}
    killed = run_dag(case, 1, kill=kill)
    describe_run(killed)
    after_kill = read_desk(case.desk, tx_mark)
    mails_at_kill = len(case.smtp.mailbox) if case.smtp else 0
    describe_run(run_dag(control, 1))
    for n in range(2, args.reruns + 2):
        describe_run(run_dag(case, n))
        if n <= args.reruns:
            describe_run(run_dag(control, n))

    # 4. what happened
    say("== the killed run")
    planned = ((killed["planned"] or {}).get("plan") or {}).get("actions") or []
    plan_kinds = Counter(a["kind"] for a in planned)
    mark = f"run {killed['run_id']}"
    by_killed = {tid for tid, t in after_kill["tickets"].items()
                 if mark in " ".join(t["cf"].get("Automation") or ())}
    done = [a for a in planned if a["ticket_id"] in by_killed]
    done_kinds = Counter(a["kind"] for a in done)
    say(f"  returncode {killed['returncode']} (-9 = SIGKILL) after {killed['seconds']:.0f} s")
    say(f"  planned: {len(planned)} actions {dict(sorted(plan_kinds.items()))}")
    say(f"  done before the kill (its run named on the ticket): {len(done)} "
        f"{dict(sorted(done_kinds.items()))}; mails received {mails_at_kill}")
    control_first = ((control.runs[0]["planned"] or {}).get("plan") or {}).get("actions") or []
    say(f"  the control's first plan: {len(control_first)} actions "
        f"{dict(sorted(Counter(a['kind'] for a in control_first).items()))}")

    results = {s.name: outcome(s, seeded, tx_mark) for s in sides}
    ca, co = results["case"], results["control"]
    say("== case vs control (end state)")
    rows = [("tickets (all queues but Automation)", ca["tickets"], co["tickets"]),
            ("tickets closed", ca["closed"], co["closed"]),
            ("closes in the history (Status->closed)", ca["closes"], co["closes"])]
    for kind, label in CATEGORIES:
        for what, n in co["cats"][kind].items():
            rows.append((f"{label}: {what}", ca["cats"][kind][what], n))
    rows += [("mails received", len(ca["mails"]), len(co["mails"])),
             ("distinct mails (ticket, key, recipients)",
              len({(m["ticket"], m["key"], m["to"]) for m in ca["mails"]}),
              len({(m["ticket"], m["key"], m["to"]) for m in co["mails"]})),
             ("distinct Message-IDs", len({m["message_id"] for m in ca["mails"]}),
              len({m["message_id"] for m in co["mails"]})),
             ("SMS delivered", len(ca["sms"]), len(co["sms"]))]
    width = max(len(r[0]) for r in rows)
    say(f"  {'':<{width}}  {'case':>7}  {'control':>7}")
    for label, a, b in rows:
        say(f"  {label:<{width}}  {a:>7}  {b:>7}" + ("" if a == b else "   <-- differs"))

    diff = compare(ca, co)
    say("== missing / doubled")
    say(f"  planned {len(planned)} / done by the killed run {len(done)} / missing "
        f"{len(diff['missing'])} / doubled {len(diff['doubled'])} (+ "
        f"{len(diff['same_id'])} sent again under the same Message-ID / Idempotency-Key)")
    for label in ("missing", "doubled", "same_id"):
        for line in diff[label][:60]:
            say(f"  {label}: {line}")
        if len(diff[label]) > 60:
            say(f"  {label}: ... {len(diff[label]) - 60} more")
    say("== run times")
    for side in sides:
        say(f"  {side.name}: " + ", ".join(
            f"run {r['n']} {r['seconds']:.0f} s{' (killed)' if r['returncode'] == -9 else ''}"
            for r in side.runs))
    (Path(sides[0].root).parent / "result.json").write_text(json.dumps(
        {"planned": len(planned), "done": len(done), **diff,
         "runs": [{k: v for k, v in r.items() if k not in ("planned", "applied")}
                  for s in sides for r in s.runs]}, indent=1, default=str))
    return 0 if not diff["missing"] and not diff["doubled"] else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
