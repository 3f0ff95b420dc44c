"""A real Airflow on loopback for end-to-end tests: API server (UI and REST), scheduler, DAG
processor and triggerer, LocalExecutor (the project's,
``incident_ops.airflow.provider.executor``) on SQLite, with per-person users.

What ``dag.test()`` cannot show needs the real thing: who may answer a question (the API
server enforces a question's assignees), what the UI shows and lets a person do, what the
scheduler does on its own (a question's response timeout, the reminders it wakes up for).

``AirflowServer`` runs the components as separate processes, each in its own process group,
from a private ``AIRFLOW_HOME`` (its own metadata DB, logs, passwords file) with the
project's ``dags/``; the connections are the test session's (desk, SMTP, SMS receivers), so
everything the DAGs do lands where the tests look. Users come from the simple auth manager:
``{login: role}`` with generated passwords (``password(login)``); ``admin`` is the
platform's account, never an answerer. Start to ready (API up, DAGs parsed) takes about
15 s on two cores; ``stop`` (SIGINT to each group, SIGKILL after a grace period) a few.

The session fixture ``airflow_server`` (registered by the top-level conftest) starts one for
the whole session, lazily, with the people of ``include/config/contacts.yaml`` as users:

    def test_answer(airflow_server):
        run_id = airflow_server.trigger("emergency_response", conf, as_user="sun.min")
        airflow_server.wait(lambda: airflow_server.hitl(...), "the question", 60)
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests

from tests.support import free_port

REPO = Path(__file__).resolve().parents[2]
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
T = TypeVar("T")


class AirflowServer:
    """One Airflow installation on 127.0.0.1:<port>, started and stopped by the tests."""

    def __init__(self, home: Path, users: dict[str, str], *, port: int | None = None,
                 env: dict[str, str] | None = None, components: tuple[str, ...] = COMPONENTS,
                 dags_folder: Path = REPO / "dags") -> None:
        self.home = home
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.users = {"admin": "admin", **users}
        self.passwords = {login: secrets.token_urlsafe(12) for login in self.users}
        self.components = components
        self.dags_folder = dags_folder
        self.extra_env = dict(env or {})
        self.config_dir = home / "config"  # a copy of include/config the tests may edit
        self._secrets = (secrets.token_urlsafe(24), secrets.token_urlsafe(24))
        # Signs the requester's answer links (connection ``incident_ops_answers``).
        self.answer_secret = secrets.token_urlsafe(32)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._tokens: dict[str, str] = {}

    # ------------------------------------------------------------------ lifecycle
    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AIRFLOW__") and k != "AIRFLOW_HOME"}
        path = os.pathsep.join([str(REPO / "include"), str(REPO),
                                os.environ.get("PYTHONPATH", "")])
        return {
            **env,
            "PYTHONPATH": path,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # Airflow's LocalExecutor, minus the race that failed answers given at once
            # (incident_ops.airflow.provider.executor, issue 24).
            "AIRFLOW__CORE__EXECUTOR": "incident_ops.airflow.provider.executor.LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
            # The scheduler's and the triggerer's log servers (8793, 8794 by default) on free
            # ports: two test Airflows at once (xdist workers) clashed on "address in use".
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": self._secrets[0],
            "AIRFLOW__API__SECRET_KEY": self._secrets[1],
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(
                f"{login}:{role}" for login, role in self.users.items()),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            # How often the scheduler looks for questions whose wait is over (15 s by default):
            # the reminder tests wait seconds, not minutes.
            "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "1",
            # Idle CPU (the server lives for the whole pytest session, alongside other tests):
            # dags/ does not change during a session, so the DAG processor parses each file
            # once at start instead of every 30 s (callbacks are still run as they come);
            # pool metrics go nowhere. 6 -> 3 CPU-seconds per idle minute.
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
            "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "3600",
            "AIRFLOW__SCHEDULER__POOL_METRICS_INTERVAL": "300",
            "INCIDENT_OPS_AIRFLOW_URL": self.url,
            "AIRFLOW_CONN_INCIDENT_OPS_ANSWERS": json.dumps({
                "conn_type": "generic", "password": self.answer_secret,
                "extra": {"valid_days": 14}}),
            "INCIDENT_OPS_REPORTS_DIR": str(self.home / "reports"),
            "INCIDENT_OPS_CONFIG_DIR": str(self.config_dir),
            **self.extra_env,
        }

    def start(self, timeout: float = 120) -> AirflowServer:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "passwords.json").write_text(json.dumps(self.passwords), encoding="utf-8")
        if not self.config_dir.exists():
            shutil.copytree(REPO / "include" / "config", self.config_dir)
        env = self.env
        migrate = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env,
                                 capture_output=True, text=True, timeout=timeout, check=False)
        if migrate.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{migrate.stderr[-3000:]}")
        for component in self.components:
            log = (self.home / f"{component}.log").open("wb")
            self.procs[component] = subprocess.Popen(
                [sys.executable, "-m", "airflow", component], env=env, cwd=self.home,
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)  # its own group: stopped whole, workers included
        try:
            self.wait(self._healthy, "the API server to answer", timeout)
            self.api("admin", "POST", "/api/v2/pools", json={
                "name": "servicedesk", "slots": 4, "include_deferred": False,
                "description": "calls to the service desk"}).raise_for_status()
        except BaseException:
            self.stop()
            raise
        return self

    def _healthy(self) -> bool:
        for component, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"airflow {component} exited {proc.returncode}:\n"
                                   f"{self.log_tail(component)}")
        try:
            return requests.get(f"{self.url}/api/v2/monitor/health", timeout=2).ok
        except requests.RequestException:
            return False

    def stop(self, grace: float = 15) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:  # whatever is left of the group (LocalExecutor workers, task processes)
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
        self.procs.clear()

    def __enter__(self) -> AirflowServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, component: str, lines: int = 40) -> str:
        path = self.home / f"{component}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])

    # ------------------------------------------------------------------------ REST
    def password(self, login: str) -> str:
        return self.passwords[login]

    def token(self, login: str) -> str:
        if login not in self._tokens:
            answer = requests.post(f"{self.url}/auth/token", timeout=30, json={
                "username": login, "password": self.passwords[login]})
            answer.raise_for_status()
            self._tokens[login] = answer.json()["access_token"]
        return self._tokens[login]

    def api(self, login: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A REST call to ``/api/v2/...`` as ``login``."""
        headers = {"Authorization": f"Bearer {self.token(login)}", **kwargs.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=60, **kwargs)

    def wait_dag(self, dag_id: str, timeout: float = 90) -> None:
        self.wait(lambda: self.api("admin", "GET", f"/api/v2/dags/{dag_id}").ok,
                  f"DAG {dag_id} to be parsed", timeout)

    def trigger(self, dag_id: str, conf: dict[str, Any], *, as_user: str = "admin",
                run_id: str | None = None) -> str:
        """Unpause ``dag_id`` and start a run with ``conf`` as ``as_user``; its run id."""
        self.wait_dag(dag_id)
        self.api("admin", "PATCH", f"/api/v2/dags/{dag_id}",
                 json={"is_paused": False}).raise_for_status()
        body: dict[str, Any] = {"logical_date": None, "conf": conf}
        if run_id:
            body["dag_run_id"] = run_id
        answer = self.api(as_user, "POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)
        if not answer.ok:
            raise AssertionError(f"trigger {dag_id}: {answer.status_code} {answer.text}")
        return str(answer.json()["dag_run_id"])

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        answer = self.api("admin", "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/"
                          "taskInstances", params={"limit": 500})
        answer.raise_for_status()
        return {t["task_id"]: str(t["state"]) for t in answer.json()["task_instances"]}

    def run_state(self, dag_id: str, run_id: str) -> str:
        answer = self.api("admin", "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        answer.raise_for_status()
        return str(answer.json()["state"])

    def waiting(self, dag_id: str, run_id: str, task_id: str) -> bool:
        """The question of ``task_id`` is posted and waits for an answer."""
        return self.task_states(dag_id, run_id).get(task_id) == "awaiting_input"

    # ------------------------------------------------------------------------ UI
    def task_url(self, dag_id: str, run_id: str, task_id: str, tab: str = "required_actions"
                 ) -> str:
        """A task's page in the UI (by default its question: "Required actions")."""
        from urllib.parse import quote

        return (f"{self.url}/dags/{dag_id}/runs/{quote(run_id, safe='')}/tasks/"
                f"{quote(task_id, safe='')}/{tab}")

    def sign_in(self, page: Any, login: str) -> None:
        """Sign ``login`` in on ``page`` when it shows the login form (the UI sends an
        unknown visitor there and back to where they were going)."""
        page.wait_for_load_state("networkidle")
        if "/auth/login" not in page.url:
            return
        page.get_by_label("Username").fill(login)
        page.get_by_label("Password").fill(self.passwords[login])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: "/auth/login" not in url, timeout=30_000)
        page.wait_for_load_state("networkidle")

    # ------------------------------------------------------------------- waiting
    def wait(self, check: Callable[[], T], what: str, timeout: float, pause: float = 1.0
             ) -> T:
        """Poll ``check`` until it returns something true; fail naming ``what`` and the
        components' log tails after ``timeout`` seconds. Once a second: every look is a
        request the API server answers (20-80 ms of its CPU), and the suite's 2 cores are
        its bottleneck; what the tests wait for takes seconds."""
        deadline = time.monotonic() + timeout
        while True:
            found = check()
            if found:
                return found
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {c}\n{self.log_tail(c, 15)}" for c in self.procs)
                raise AssertionError(f"waited {timeout:.0f} s for {what}\n{logs}")
            time.sleep(pause)


def contacts_users() -> dict[str, str]:
    """The Airflow logins of contacts.yaml, each with the role "user" (may trigger and
    answer; no connections, variables or admin pages)."""
    from incident_ops.config import load_contacts

    return {p.airflow_user: "user" for p in load_contacts().people.values() if p.airflow_user}


@pytest.fixture(scope="session")
def airflow_server(tmp_path_factory: pytest.TempPathFactory, desk_url: str, smtp_server: Any,
                   sms_gateway: Any) -> Iterator[AirflowServer]:
    """One real Airflow for the session: the project's DAGs against this session's desk,
    SMTP and SMS receivers; the people of contacts.yaml as users."""
    home = tmp_path_factory.mktemp("airflow-server")
    with AirflowServer(home, contacts_users()) as server:
        yield server
