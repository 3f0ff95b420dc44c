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
   through RT's REST2 (``_kill_desks.py``: ticket searches with their custom fields,
   transactions written after seeding); seeded ticket ids are identical on both desks,
   created copies are matched by their idempotency key, mails by (ticket,
   ``X-Incident-Ops-Key``, recipients). A mail sent
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
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "include"), str(REPO)]

from _common import free_port, read_only, say  # noqa: E402
from _kill_desks import (  # noqa: E402
    CATEGORIES,
    compare,
    copy_desk,
    db_mark,
    outcome,
    read_desk,
    seed_with_progress,
)

from incident_ops.embedded_desk import EmbeddedDesk  # noqa: E402
from tests.support import FROM_EMAIL  # noqa: E402
from tests.support.mail import SmtpTestServer, _Handler  # noqa: E402
from tests.support.sms import SmsReceiver  # noqa: E402

DAG_ID = "incident_closure"
LEASE_SECONDS = "8"  # a killed run's lease runs out in seconds, not minutes
RUN_DEADLINE_S = 1800.0


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
        return read_only(self.home / "airflow.db")


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


# ---------------------------------------------------------------------------------- main
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

    results = {s.name: outcome(s.desk, s.smtp, s.sms, seeded, tx_mark) for s in sides}
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
