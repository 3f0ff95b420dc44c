"""What the benchmarks share: a free port, RT's time format, the embedded desk's Perl loader,
a logged-in REST2 session, a read-only SQLite connection, a notifier that counts, a flushed print.

Imported by the bench scripts (``bench/`` is on ``sys.path`` when one runs); each puts
``include/`` on the path before importing it.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from incident_ops.embedded_desk import EmbeddedDesk
from incident_ops.embedded_desk.rt_server import perl
from incident_ops.embedded_desk.seeding import SEED_SCRIPT


def say(text: str = "") -> None:
    print(text, flush=True)


class CountingNotifier:
    """The applier's notifier: counts what it is asked to send, sends nothing."""

    def __init__(self) -> None:
        self.emails = 0
        self.sms = 0

    @property
    def sent(self) -> int:
        return self.emails + self.sms

    def send_email(self, email: Any) -> None:
        self.emails += 1

    def send_sms(self, sms: Any) -> None:
        self.sms += 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rt_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def seed(desk: EmbeddedDesk, recs: list[dict[str, Any]]) -> tuple[float, dict[str, int]]:
    """Load ``recs`` with the embedded desk's Perl loader; returns seconds and key -> id."""
    payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs)
    started = time.perf_counter()
    proc = subprocess.run([perl(), str(SEED_SCRIPT)], input=payload.encode(),
                          capture_output=True, env=desk.rt_env(), cwd=desk.workdir,
                          timeout=900, check=False)
    seconds = time.perf_counter() - started
    ids = {row["key"]: int(row["id"]) for row in
           (json.loads(x) for x in proc.stdout.decode().splitlines() if x.strip())}
    if proc.returncode != 0 or len(ids) != len(recs):
        raise SystemExit(f"seeding failed ({len(ids)} of {len(recs)}, exit {proc.returncode}):"
                         f"\n{proc.stderr.decode(errors='replace')[-2000:]}")
    return seconds, ids


def rest_session(url: str, user: str, password: str) -> requests.Session:
    """A REST2 session logged in once, as the adapter's client is: REST2 checks a password
    with bcrypt on every call, a web-session cookie in milliseconds."""
    session = requests.Session()
    session.auth = (user, password)
    session.headers["Accept"] = "application/json"
    session.post(url + "/NoAuth/Login.html", data={"user": user, "pass": password},
                 allow_redirects=False, timeout=60)
    return session


def read_only(db: Path) -> sqlite3.Connection:
    """A read-only connection to a SQLite file another process writes (the desk's, Airflow's)."""
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
