"""``make demo`` in a scratch copy of the repository, on free loopback ports, for tests.

The copy holds the repository's files as they are in the working tree (tracked and new,
not ignored), with ``.venv`` linked to the environment running the tests. ``scripts/demo.sh
start`` (what ``make demo`` runs once ``make install`` is satisfied) then starts the desk,
the mail catcher and Airflow standalone in the copy: its ``.run/`` and ``.desk/`` are the
copy's, so a developer's own demo is never touched, and the ports come from the
environment the script reads (``DEMO_AIRFLOW_PORT``, ``DESK_PORT``, ``DEMO_SMTP_PORT``,
``DEMO_MAIL_PORT``). ``make install`` itself is not run: it would reinstall the shared
virtual environment from the copy.

A real Airflow: API server, scheduler, DAG processor and triggerer (``airflow standalone``,
LocalExecutor, SQLite), so what ``dag.test()`` cannot show (schedules, deadlines, DAG
callbacks in the DAG processor, plugins in the API server) happens here as in production.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import requests

from tests.support import free_port

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def poll(check: Callable[[], T | None], deadline_s: float, what: str,
         interval: float = 1.0) -> T:
    """``check()`` until it returns something truthy; AssertionError after the deadline."""
    end = time.monotonic() + deadline_s
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > end:
            raise AssertionError(f"{what}: not within {deadline_s:.0f} s")
        time.sleep(interval)


def copy_repository(target: Path) -> Path:
    """The working tree's files (tracked and untracked, not ignored) copied to ``target``."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=REPO, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(Path(sys.prefix))
    return target


def new_shell_env(**extra: str) -> dict[str, str]:
    """What a freshly opened terminal has: none of the test session's Airflow settings."""
    keep = ("HOME", "LANG", "LC_ALL", "TERM", "USER", "TMPDIR")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    env.setdefault("LANG", "C.UTF-8")
    env.update(extra)
    return env


class Demo:
    """``make demo`` in ``root`` (a copy of the repository) on free ports."""

    def __init__(self, root: Path, *, tickets: int, settings: dict[str, str] | None = None):
        self.root = root
        self.tickets = tickets
        self.ports = {"DEMO_AIRFLOW_PORT": free_port(), "DESK_PORT": free_port(),
                      "DEMO_SMTP_PORT": free_port(), "DEMO_MAIL_PORT": free_port()}
        self.settings = settings or {}
        self.airflow = f"http://127.0.0.1:{self.ports['DEMO_AIRFLOW_PORT']}"
        self.mailbox = f"http://127.0.0.1:{self.ports['DEMO_MAIL_PORT']}"
        self.desk = f"http://127.0.0.1:{self.ports['DESK_PORT']}"
        self.started_in: float | None = None
        self.output = ""
        self._token: str | None = None

    def start(self, timeout: float = 900) -> None:
        env = new_shell_env(DEMO_TICKETS=str(self.tickets),
                            **{k: str(v) for k, v in self.ports.items()}, **self.settings)
        t0 = time.monotonic()
        proc = subprocess.run(["bash", "scripts/demo.sh", "start"], cwd=self.root, env=env,
                              capture_output=True, text=True, timeout=timeout, check=False)
        self.started_in = time.monotonic() - t0
        self.output = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise AssertionError(f"make demo failed ({proc.returncode}):\n{self.output[-4000:]}"
                                 f"\n--- airflow.log\n{self.log_tail('airflow.log')}")

    def stop(self) -> subprocess.CompletedProcess[str]:
        """``make stop``, as printed."""
        return subprocess.run(["make", "stop"], cwd=self.root, env=new_shell_env(),
                              capture_output=True, text=True, timeout=180, check=False)

    def log_tail(self, name: str, lines: int = 60) -> str:
        path = self.root / ".run" / name
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def shell(self, script: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """``script`` in a new bash in the repository's root, as a newcomer types it."""
        return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=self.root,
                              env=new_shell_env(), capture_output=True, text=True,
                              timeout=timeout, check=False)

    # ---------------------------------------------------------------- Airflow REST API
    def token(self) -> str:
        if self._token is None:
            resp = requests.post(f"{self.airflow}/auth/token", timeout=30,
                                 json={"username": "admin", "password": "admin"})
            resp.raise_for_status()
            self._token = str(resp.json()["access_token"])
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = requests.request(method, self.airflow + path, timeout=60,
                                headers={"Authorization": f"Bearer {self.token()}"}, **kwargs)
        resp.raise_for_status()
        return resp.json() if resp.content else None

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns",
                             params={"order_by": "-run_after", "limit": 100})["dag_runs"])

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        found = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                         params={"limit": 200})["task_instances"]
        return {t["task_id"]: str(t["state"]) for t in found}

    # ------------------------------------------------------------------------ mailbox
    def mail(self) -> list[dict[str, Any]]:
        return list(requests.get(self.mailbox + "/api/mail", timeout=30).json())

    def sms(self) -> list[dict[str, Any]]:
        return list(requests.get(self.mailbox + "/api/sms", timeout=30).json())
