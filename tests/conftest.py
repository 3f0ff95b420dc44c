"""The test harness shared by every test: a private Airflow home, real servers on loopback.

Airflow reads its configuration once, when it is first imported, so the environment is set
here at import time, before any test module can import it:

* ``AIRFLOW_HOME``: a fresh temporary directory per pytest process (config, SQLite DB, logs);
* ``AIRFLOW__CORE__DAGS_FOLDER``: the repository's ``dags/``; examples off;
* ``AIRFLOW_CONN_*`` / ``AIRFLOW_VAR_*`` inherited from the developer's shell are dropped, so
  a test never talks to a real desk or mail server by accident. ``DESK_URL`` is the one
  deliberate way to point the tests at an existing desk.

``[core] unit_test_mode`` is not used: it loads Airflow's own test configuration (examples
on, LocalExecutor, paths of Airflow's repository), which is not what our DAGs run under.

Fixtures (all lazy: a test pays only for what it asks for):

* ``airflow_db`` (session): migrates the metadata DB once (~3 s); DAG tests need it.
* ``smtp_server`` (session) / ``mailbox`` (function, emptied per test): aiosmtpd on
  127.0.0.1; sets ``AIRFLOW_CONN_SMTP_DEFAULT``.
* ``sms_gateway`` (session) / ``sms_receiver`` (function, reset per test): HTTP receiver on
  127.0.0.1; sets ``AIRFLOW_CONN_SMS_DEFAULT``.
* ``airflow_server`` (session): a real Airflow (API server, scheduler, DAG processor,
  triggerer) on loopback with the people of contacts.yaml as users, against this session's
  desk, SMTP and SMS receivers (``tests/support/airflow_server.py``).
* ``browser`` (function; one Chromium per session): Debian's headless Chromium under
  Playwright, pages at a chosen viewport width (``tests/support/browser.py``).
* ``desk_url`` (session): ``$DESK_URL`` or this session's own embedded RT 5 (private copy of
  a provisioned template, free port); sets ``AIRFLOW_CONN_SERVICEDESK_DEFAULT``.
  ``embedded_desk`` gives the ``EmbeddedDesk`` (None when ``DESK_URL`` points elsewhere).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support import FROM_EMAIL

if TYPE_CHECKING:
    from incident_ops.embedded_desk import EmbeddedDesk
    from tests.support.mail import Mailbox, SmtpTestServer
    from tests.support.sms import SmsReceiver

# Fixtures shared beyond one folder: ``browser`` (headless Chromium, tests/support/browser.py)
# and ``airflow_server`` (a real Airflow on loopback, tests/support/airflow_server.py).
pytest_plugins = ["tests.support.browser", "tests.support.airflow_server"]

REPO_ROOT = Path(__file__).resolve().parents[1]
DAGS_FOLDER = REPO_ROOT / "dags"

# ---------------------------------------------------------------- Airflow environment
for _name in [n for n in os.environ if n.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))]:
    del os.environ[_name]

AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="incident-ops-airflow-"))
os.environ["AIRFLOW_HOME"] = str(AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_FOLDER)
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO_ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}"
# The DAG tests run tasks in-process; their log files go to the private home too.
os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] = str(AIRFLOW_HOME / "logs")
# A task that fails in a DAG test retries after a second, not a minute.
os.environ["INCIDENT_OPS_RETRY_DELAY_SECONDS"] = "1"
# No deadline alerts under dag.test(): nothing there would notice a missed deadline (that
# is the scheduler's job, tested on the demo), and Airflow 3.3.2's dag.test() fails a
# successful run of a DAG with a deadline (update_state looks the alert definitions up as
# if they were database ids).
os.environ["INCIDENT_OPS_URGENT_DEADLINE_MINUTES"] = "0"
os.environ["INCIDENT_OPS_CLOSURE_DEADLINE_MINUTES"] = "0"
for _kind in ("REPORT_DAILY", "REPORT_WEEKLY", "REPORT_MONTHLY", "SNAPSHOT"):
    os.environ[f"INCIDENT_OPS_{_kind}_DEADLINE_MINUTES"] = "0"
# On-call alerting is off (no address) unless a test switches it on.
os.environ.pop("INCIDENT_OPS_ALERT_TO", None)
# One Fernet key for this session's every Airflow process (the tests' DAG runs, the runs they
# start in processes of their own, the CLI): otherwise each process that finds no key makes
# its own, and a Variable one encrypted reads as ciphertext in another (the outbox of a
# killed run's subprocess did, whenever an `airflow` CLI call had written airflow.cfg first).
if not os.environ.get("AIRFLOW__CORE__FERNET_KEY"):
    import base64

    os.environ["AIRFLOW__CORE__FERNET_KEY"] = base64.urlsafe_b64encode(os.urandom(32)).decode()


# The longest test files first (seconds each, measured on CI's 2 cores): `--dist loadfile`
# hands files out in collection order, and a long file handed out last ran alone for minutes
# at the end of the suite while the other workers sat idle. Within a file the order stays.
LONGEST_FIRST = (
    "tests/demo/test_readme.py",
    "tests/e2e/test_fast_answers.py",
    "tests/dags/test_exactly_once_at_size_outage.py",
    "tests/dags/test_exactly_once.py",
    "tests/dags/test_exactly_once_at_size.py",
    "tests/e2e/test_emergency_people.py",
    "tests/dags/test_exactly_once_edits_and_senders.py",
    "tests/dags/test_emergency_response_runs.py",
    "tests/dags/test_hostile_text.py",
    "tests/dags/test_emergency_response.py",
    "tests/e2e/test_urgent_events.py",
    "tests/dags/test_emergency_response_aftermath.py",
    "tests/deploy/test_celery.py",
    "tests/dags/test_incident_closure.py",
    "tests/e2e/test_one_emergency.py",
    "tests/dags/test_monitoring.py",
    "tests/dags/test_oncall.py",
    "tests/integration/test_embedded_desk.py",
    "tests/integration/test_rt_adapter.py",
    "tests/dags/test_incident_reports.py",
    "tests/deploy/test_wheel.py",
    "tests/integration/test_rt_faults.py",
    "tests/e2e/test_requester_answer.py",
)


def pytest_configure(config: pytest.Config) -> None:
    # xdist reorders files by their number of tests unless told not to (a file of 60 unit
    # tests first, the 7-minute e2e file somewhere in the middle): keep the order above.
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


def pytest_report_header(config: pytest.Config) -> str:
    """Which RT the suite runs against: Debian's updates change its behaviour."""
    import subprocess

    try:
        version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "request-tracker5"],
                                 capture_output=True, text=True, timeout=10,
                                 check=False).stdout.strip()
    except OSError:
        version = ""
    return f"desk: {os.environ.get('DESK_URL') or 'embedded'}; Debian request-tracker5 " \
           f"{version or 'not installed'}"


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


# -------------------------------------------------------------------- metadata DB
@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A freshly migrated SQLite metadata DB in the private AIRFLOW_HOME (once per session)."""
    from airflow.utils import db

    db.resetdb()
    return AIRFLOW_HOME / "airflow.db"


# ------------------------------------------------------------------------- SMTP
@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpTestServer]:
    """aiosmtpd on 127.0.0.1:<free port>; ``AIRFLOW_CONN_SMTP_DEFAULT`` points at it."""
    from tests.support.mail import SmtpTestServer

    with SmtpTestServer() as server, pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW_CONN_SMTP_DEFAULT", server.connection_uri(FROM_EMAIL))
        yield server


@pytest.fixture
def mailbox(smtp_server: SmtpTestServer) -> Mailbox:
    """The SMTP server's mailbox, emptied for this test."""
    smtp_server.mailbox.clear()
    return smtp_server.mailbox


# -------------------------------------------------------------------------- SMS
@pytest.fixture(scope="session")
def sms_gateway() -> Iterator[SmsReceiver]:
    """The SMS receiver on 127.0.0.1:<free port>; ``AIRFLOW_CONN_SMS_DEFAULT`` points at it."""
    from tests.support.sms import SmsReceiver

    with SmsReceiver() as receiver, pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW_CONN_SMS_DEFAULT", receiver.connection_json())
        yield receiver


@pytest.fixture
def sms_receiver(sms_gateway: SmsReceiver) -> SmsReceiver:
    """The SMS receiver with no recorded requests and no pending failures."""
    sms_gateway.reset()
    return sms_gateway


# ------------------------------------------------------------------------- desk
def _provisioned_template() -> Path:
    """A provisioned (never started) desk workdir, built once and shared by all sessions.

    Provisioning takes 6-12 s; copying its database takes milliseconds. The lock makes
    concurrent pytest sessions (parallel CI jobs, several engineers) wait for one builder
    instead of racing on the same files.
    """
    import fcntl

    from incident_ops.embedded_desk import EmbeddedDesk

    template = Path(os.environ.get("TEST_DESK_TEMPLATE") or REPO_ROOT / ".run" / "test-desk")
    template.mkdir(parents=True, exist_ok=True)
    with open(template / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        EmbeddedDesk(template).provision()  # a no-op while the schema is unchanged
    return template


@contextmanager
def private_desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDesk | None]:
    """A running embedded RT 5 of its own (a copy of the provisioned template's database on a
    free port), stopped on leaving; None when ``DESK_URL`` names another desk."""
    if os.environ.get("DESK_URL"):
        yield None
        return
    from incident_ops.embedded_desk import EmbeddedDesk
    from tests.support import free_port

    if not EmbeddedDesk.rt_installed():
        pytest.fail("Request Tracker 5 is not installed: run `python -m incident_ops."
                    "embedded_desk install`, or set DESK_URL to a desk to test against")
    template = _provisioned_template()
    workdir = tmp_path_factory.mktemp("desk")
    for name in ("rt.db", "rt.db-wal", "rt.db-shm", "provisioned.json"):
        if (template / name).exists():
            shutil.copy2(template / name, workdir / name)
    desk = EmbeddedDesk(workdir, port=free_port())
    desk.start()  # raises with RT's log tail if it cannot start
    try:
        yield desk
    finally:
        desk.stop()


@contextmanager
def desk_connection(embedded: EmbeddedDesk | None) -> Iterator[str]:
    """``AIRFLOW_CONN_SERVICEDESK_DEFAULT`` pointing at ``embedded`` (or at ``DESK_URL``) while
    inside; yields the desk's base URL."""
    from incident_ops.embedded_desk import ROOT_PASSWORD, ROOT_USER

    if embedded is not None:
        url, user, password = embedded.url, embedded.user, embedded.password
    else:
        url = os.environ["DESK_URL"].rstrip("/")
        user = os.environ.get("DESK_USER", ROOT_USER)
        password = os.environ.get("DESK_PASSWORD", ROOT_PASSWORD)
    conn = {
        "conn_type": "servicedesk",
        "host": url,
        "login": user,
        "password": password,
        "extra": {"backend": "rt5", "timeout": 30, "page_size": 100, "max_concurrency": 4},
    }
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW_CONN_SERVICEDESK_DEFAULT", json.dumps(conn))
        yield url


@pytest.fixture(scope="session")
def embedded_desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDesk | None]:
    """This session's own embedded RT 5, or None when ``DESK_URL`` names another desk.

    Each session gets a private working directory (a copy of the provisioned template's
    database) and a free port, so sessions never share tickets or fight over a server, and
    the demo's ``.desk`` is never touched. Stopped at the end of the session. (A module whose
    hundreds of tickets would burden every later test's scans overrides this and ``desk_url``
    with a module-scoped ``private_desk``.)
    """
    with private_desk(tmp_path_factory) as desk:
        yield desk


@pytest.fixture(scope="session")
def desk_url(embedded_desk: EmbeddedDesk | None) -> Iterator[str]:
    """Base URL of the desk under test; ``AIRFLOW_CONN_SERVICEDESK_DEFAULT`` points at it.

    ``DESK_URL`` (+ ``DESK_USER``/``DESK_PASSWORD``, default root/password) selects an
    existing desk; otherwise the embedded one.
    """
    with desk_connection(embedded_desk) as url:
        yield url
