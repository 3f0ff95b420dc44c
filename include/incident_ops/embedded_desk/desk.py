"""The embedded desk: a private Request Tracker 5 on loopback, for the demo and the tests.

``EmbeddedDesk`` installs RT from Debian's packages when it is missing, provisions a
project-local SQLite database with the process's schema, starts and stops ``rt-server`` in
its own process group, reports its status and seeds realistic tickets. The CLI in
``__main__`` wraps it; the integration tests call it directly.

Layout of the working directory (default ``<repo>/.desk``, env ``DESK_WORKDIR``)::

    etc/RT_SiteConfig.pm, etc/RT_SiteConfig.d/*.pm   private RT config (Debian's + ours)
    etc/initialdata.pl                               generated schema (queues, CFs, users)
    rt.db                                            the SQLite database
    provisioned.json                                 schema digest of rt.db (written last)
    seeded.json                                      what seed loaded (no double seeding)
    rt-server.pid, rt-server.log, rt.log             the running server

Every wait has a deadline; nothing sleeps for a fixed time where it can poll instead.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from incident_ops.embedded_desk import rtconfig

if TYPE_CHECKING:
    from incident_ops.embedded_desk.seed_data import SeedTicket

log = logging.getLogger("incident_ops.embedded_desk")

RT_PREFIX = Path("/usr/share/request-tracker5")
RT_SERVER = RT_PREFIX / "libexec" / "rt-server"
RT_LIB = RT_PREFIX / "lib"
RT_SETUP_DATABASE = Path("/usr/sbin/rt-setup-database-5")
DEBIAN_SITE_CONFIG_DIR = Path("/etc/request-tracker5/RT_SiteConfig.d")
# rt5-standalone is the first alternative request-tracker5 needs anyway; naming it makes
# sure the Starlet server rt-server runs on is there.
APT_PACKAGES = ("request-tracker5", "rt5-db-sqlite", "rt5-standalone")

DEFAULT_HOST = "127.0.0.1"  # loopback unless told otherwise (a container: 0.0.0.0)
DEFAULT_PORT = 8480
DEFAULT_WORKERS = 4
ROOT_USER = "root"
ROOT_PASSWORD = "password"  # RT's documented default on a fresh database: demo only
READY_PATH = "/REST/2.0/queues/all"

# <repo>/include/incident_ops/embedded_desk/desk.py; an installed (non-editable) package has
# no repository around it, so fall back to the current directory.
_CANDIDATE_ROOT = Path(__file__).resolve().parents[3]
REPO_ROOT = _CANDIDATE_ROOT if (_CANDIDATE_ROOT / "pyproject.toml").exists() else Path.cwd()
OUR_SITE_CONFIG = "90-embedded-desk.pm"


class EmbeddedDeskError(RuntimeError):
    """The embedded desk could not do what was asked; the message says why and what to do."""


@dataclass(frozen=True)
class DeskStatus:
    running: bool
    url: str
    pid: int | None = None
    port: int | None = None
    workers: int | None = None
    tickets: int | None = None
    memory_mb: float | None = None  # PSS of the whole process group
    provisioned: bool = False
    schema_current: bool = False
    seeded: dict[str, Any] | None = None


def default_workdir() -> Path:
    env = os.environ.get("DESK_WORKDIR")
    return Path(env).resolve() if env else REPO_ROOT / ".desk"


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    try:
        return int(value) if value else default
    except ValueError as exc:
        raise EmbeddedDeskError(f"{name}={value!r} is not a number") from exc


def _pid_alive(pid: int) -> bool:
    """True if the process exists and is not a zombie (a zombie still answers kill 0)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return False
    # The state follows the parenthesised command name, which may itself hold spaces.
    return stat[stat.rfind(")") + 2:][:1] not in ("Z", "X", "")


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) == pgid and _pid_alive(int(entry.name)):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def _pss_mb(pids: list[int]) -> float | None:
    total_kb = 0
    seen = False
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fh:
                for line in fh:
                    if line.startswith("Pss:"):
                        total_kb += int(line.split()[1])
                        seen = True
                        break
        except OSError:
            continue
    return round(total_kb / 1024, 1) if seen else None


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies (Linux PR_SET_PDEATHSIG).

    The master forwards SIGTERM to its workers (Parallel::Prefork), so the group goes too.
    """
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True if something already listens on host:port (bind fails)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR so a socket in TIME_WAIT from a previous run is not a false alarm;
        # Linux still refuses the bind while another socket listens there.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _run(cmd: list[str], *, env: dict[str, str] | None = None, timeout: float,
         what: str) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        raise EmbeddedDeskError(f"{what} did not finish within {timeout:.0f} s") from exc
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip()[-3000:]
        raise EmbeddedDeskError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc


class EmbeddedDesk:
    """A private RT 5 on 127.0.0.1 (or ``host``) backed by SQLite in ``workdir``."""

    def __init__(self, workdir: str | Path | None = None, port: int | None = None,
                 workers: int | None = None, config_dir: Path | None = None,
                 host: str | None = None) -> None:
        self.workdir = Path(workdir).resolve() if workdir else default_workdir()
        # The address rt-server listens on: loopback by default; 0.0.0.0 in a container so
        # other containers reach it (env DESK_HOST). The URLs below always name an address
        # this machine can connect to.
        self.host = host or os.environ.get("DESK_HOST") or DEFAULT_HOST
        self.port = port if port is not None else _env_int("DESK_PORT", DEFAULT_PORT)
        self.workers = workers if workers is not None else _env_int("DESK_WORKERS",
                                                                     DEFAULT_WORKERS)
        self.config_dir = config_dir
        self.user = ROOT_USER
        self.password = ROOT_PASSWORD
        self._proc: subprocess.Popen[bytes] | None = None  # when we started it ourselves

    # ------------------------------------------------------------------ paths
    @property
    def connect_host(self) -> str:
        """Where a client on this machine reaches the server (a wildcard means loopback)."""
        return DEFAULT_HOST if self.host in ("0.0.0.0", "") else self.host

    @property
    def url(self) -> str:
        return f"http://{self.connect_host}:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"{self.url}/REST/2.0"

    @property
    def auth(self) -> tuple[str, str]:
        return (self.user, self.password)

    @property
    def etc_dir(self) -> Path:
        return self.workdir / "etc"

    @property
    def site_config_dir(self) -> Path:
        return self.etc_dir / "RT_SiteConfig.d"

    @property
    def db_path(self) -> Path:
        return self.workdir / "rt.db"

    @property
    def pid_file(self) -> Path:
        return self.workdir / "rt-server.pid"

    @property
    def server_log(self) -> Path:
        return self.workdir / "rt-server.log"

    @property
    def provisioned_marker(self) -> Path:
        return self.workdir / "provisioned.json"

    @property
    def seeded_marker(self) -> Path:
        return self.workdir / "seeded.json"

    def rt_env(self, db_path: Path | None = None) -> dict[str, str]:
        """Environment for any RT command: our private config, never the system's."""
        env = dict(os.environ)
        env["RT_SITE_CONFIG"] = str(self.etc_dir / "RT_SiteConfig.pm")
        env["RT_SITE_CONFIG_DIR"] = str(self.site_config_dir)
        env.pop("EMBEDDED_DESK_DB", None)
        if db_path is not None:
            env["EMBEDDED_DESK_DB"] = str(db_path)
        # Perl complains loudly about unset locales on minimal machines.
        env.setdefault("LANG", "C.UTF-8")
        env["LC_ALL"] = env.get("LC_ALL") or "C.UTF-8"
        return env

    # ---------------------------------------------------------------- install
    @staticmethod
    def rt_installed() -> bool:
        return RT_SERVER.exists() and RT_SETUP_DATABASE.exists()

    def install(self) -> bool:
        """Install RT from Debian's packages if it is missing. Returns True if it installed."""
        if self.rt_installed():
            log.info("RT 5 already installed (%s)", RT_SERVER)
            return False
        if os.geteuid() != 0:
            raise EmbeddedDeskError("RT 5 is not installed and installing it needs root: run "
                            f"apt-get install -y {' '.join(APT_PACKAGES)}")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        log.info("installing %s (takes about a minute)", " ".join(APT_PACKAGES))
        _run(["apt-get", "update"], env=env, timeout=600, what="apt-get update")
        _run(["apt-get", "install", "-y", "--no-install-recommends", *APT_PACKAGES], env=env,
             timeout=1800, what="apt-get install")
        if not self.rt_installed():
            raise EmbeddedDeskError(f"installed {APT_PACKAGES} but {RT_SERVER} is still missing")
        return True

    # -------------------------------------------------------------- provision
    def _provisioned_info(self) -> dict[str, Any] | None:
        try:
            info = json.loads(self.provisioned_marker.read_text())
        except (OSError, ValueError):
            return None
        return info if self.db_path.exists() else None

    def is_provisioned(self) -> bool:
        return self._provisioned_info() is not None

    def schema_current(self) -> bool:
        info = self._provisioned_info()
        if info is None:
            return False
        return bool(info.get("digest") == rtconfig.build_schema(self.config_dir).digest)

    def write_config(self, desk_schema: rtconfig.DeskSchema | None = None) -> None:
        """(Re)write the private RT config for the current port; cheap, done on every start."""
        desk_schema = desk_schema or rtconfig.build_schema(self.config_dir)
        self.site_config_dir.mkdir(parents=True, exist_ok=True)
        for sub in ("mason_data", "session_data"):
            (self.workdir / sub).mkdir(exist_ok=True)
        (self.etc_dir / "RT_SiteConfig.pm").write_text(
            "# Private site config of the embedded desk; overrides live in RT_SiteConfig.d.\n1;\n")
        if DEBIAN_SITE_CONFIG_DIR.is_dir():
            for src in sorted(DEBIAN_SITE_CONFIG_DIR.glob("*.pm")):
                shutil.copyfile(src, self.site_config_dir / src.name)
        text = rtconfig.render_site_config(db_path=self.db_path, workdir=self.workdir,
                                           port=self.port, desk_schema=desk_schema)
        target = self.site_config_dir / OUR_SITE_CONFIG
        if not target.exists() or target.read_text() != text:
            target.write_text(text)

    def provision(self, force: bool = False) -> bool:
        """Create the database with the process's schema. Returns True if it (re)built it.

        A no-op when the workdir already holds a database provisioned from the same schema.
        A changed schema (schema.py, vocabulary.yaml, contacts.yaml) re-provisions, which
        wipes the desk's tickets: the old database is kept as ``rt.db.previous``.
        """
        desk_schema = rtconfig.build_schema(self.config_dir)
        info = self._provisioned_info()
        if info and not force:
            if info.get("digest") == desk_schema.digest:
                log.info("desk already provisioned in %s (schema %s)", self.workdir,
                         desk_schema.digest[:12])
                return False
            log.warning("schema changed since provisioning (%s -> %s): re-provisioning %s; "
                        "its tickets are kept in rt.db.previous only", info.get("digest",
                        "?")[:12], desk_schema.digest[:12], self.workdir)
        if self.is_running():
            raise EmbeddedDeskError(f"the desk in {self.workdir} is running (pid "
                            f"{self._read_pid().get('pid')}); stop it before provisioning")
        if not self.rt_installed():
            raise EmbeddedDeskError(f"RT 5 is not installed ({RT_SERVER} missing): run the "
                            "`install` command first")
        started = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.write_config(desk_schema)
        initialdata = self.etc_dir / "initialdata.pl"
        initialdata.write_text(rtconfig.render_initialdata(desk_schema))

        # Build beside the live database and swap at the end, so an interrupted
        # provisioning never leaves a half-made rt.db that looks provisioned.
        building = self.workdir / "rt.db.building"
        for stale in self.workdir.glob("rt.db.building*"):
            stale.unlink()
        template = self.template_cache() / f"{desk_schema.digest}.db"
        if template.exists():
            # Same schema provisioned before on this machine: a copy is a fresh desk too
            # (the database holds no path, port or host of the workdir that built it).
            shutil.copyfile(template, building)
            source = f"template {template}"
        else:
            env = self.rt_env(building)
            _run([str(RT_SETUP_DATABASE), "--action", "init", "--skip-create"], env=env,
                 timeout=180, what="rt-setup-database init")
            _run([str(RT_SETUP_DATABASE), "--action", "insert", "--datafile",
                  str(initialdata)], env=env, timeout=180,
                 what="rt-setup-database insert (schema)")
            self._save_template(building, template)
            source = "rt-setup-database"
        self._check_schema_loaded(building, desk_schema)
        with sqlite3.connect(building) as conn:
            # WAL lets the server's readers go on while a seeder or a worker writes.
            conn.execute("PRAGMA journal_mode=WAL")

        self.provisioned_marker.unlink(missing_ok=True)
        self.seeded_marker.unlink(missing_ok=True)
        if self.db_path.exists():
            previous = self.workdir / "rt.db.previous"
            os.replace(self.db_path, previous)
            for suffix in ("-wal", "-shm"):
                Path(f"{self.db_path}{suffix}").unlink(missing_ok=True)
        os.replace(building, self.db_path)
        for suffix in ("-wal", "-shm"):
            extra = Path(f"{building}{suffix}")
            if extra.exists():
                extra.unlink()
        elapsed = time.monotonic() - started
        self.provisioned_marker.write_text(json.dumps({
            "digest": desk_schema.digest,
            "provisioned_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds": round(elapsed, 2),
        }, indent=1))
        log.info("provisioned %s in %.1f s from %s (schema %s)", self.db_path, elapsed,
                 source, desk_schema.digest[:12])
        return True

    @staticmethod
    def template_cache() -> Path:
        """Where freshly provisioned databases are kept by schema digest (env DESK_CACHE_DIR)."""
        env = os.environ.get("DESK_CACHE_DIR")
        if env:
            return Path(env)
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base) / "incident-ops" / "embedded-desk"

    @staticmethod
    def _save_template(db: Path, template: Path) -> None:
        """Keep a copy of a just-built database; a failure here only costs speed later."""
        try:
            template.parent.mkdir(parents=True, exist_ok=True)
            tmp = template.with_suffix(f".tmp{os.getpid()}")
            shutil.copyfile(db, tmp)
            os.replace(tmp, template)  # atomic: concurrent provisioners never see half a file
        except OSError as exc:
            log.warning("could not cache the provisioned database in %s: %s",
                        template.parent, exc)

    @staticmethod
    def _check_schema_loaded(db: Path, desk_schema: rtconfig.DeskSchema) -> None:
        """rt-setup-database reports some failures only as log lines: verify the result."""
        data = desk_schema.initialdata
        with sqlite3.connect(db) as conn:
            queues = {r[0] for r in conn.execute("SELECT Name FROM Queues")}
            cfs = {r[0] for r in conn.execute(
                "SELECT Name FROM CustomFields WHERE Disabled = 0")}
            users = {r[0] for r in conn.execute("SELECT Name FROM Users")}
        missing = ([q["Name"] for q in data["Queues"] if q["Name"] not in queues]
                   + [c["Name"] for c in data["CustomFields"] if c["Name"] not in cfs]
                   + [u["Name"] for u in data["Users"] if u["Name"] not in users])
        if missing:
            raise EmbeddedDeskError(f"provisioning did not create: {', '.join(missing)}")

    # ------------------------------------------------------------ start/stop
    def _read_pid(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.pid_file.read_text()))
        except (OSError, ValueError):
            return {}

    def _live_pid(self) -> dict[str, Any] | None:
        """The pid-file record if its process is alive and still an rt-server."""
        info = self._read_pid()
        pid = info.get("pid")
        if not isinstance(pid, int):
            return None
        if self._proc is not None and self._proc.pid == pid:
            self._proc.poll()  # reap our own child so a dead server is not a zombie
        if _pid_alive(pid) and "rt-server" in _cmdline(pid):
            return info
        return None

    def is_running(self) -> bool:
        return self._live_pid() is not None

    def is_ready(self, timeout: float = 5.0) -> bool:
        import requests  # only the server commands need it

        try:
            resp = requests.get(self.url + READY_PATH, auth=self.auth, timeout=timeout)
        except requests.RequestException:
            return False
        return resp.status_code == 200

    def start(self, deadline_s: float = 60.0, stop_with_parent: bool = False) -> bool:
        """Start rt-server (provisioning first if needed). Returns False if already running.

        ``stop_with_parent``: the kernel sends the server SIGTERM when the calling process
        dies (even by SIGKILL), so a killed test session leaves no desk behind; the CLI
        leaves it off, its desk outlives the command.

        Raises ``EmbeddedDeskError`` if the port is taken by something else or RT does not answer
        within the deadline.
        """
        live = self._live_pid()
        if live:
            if live.get("port") != self.port:
                raise EmbeddedDeskError(
                    f"the desk in {self.workdir} already runs on port {live.get('port')} "
                    f"(pid {live['pid']}), not {self.port}: stop it first")
            live_host = live.get("host") or DEFAULT_HOST  # pid files before --host: loopback
            if live_host != self.host:
                raise EmbeddedDeskError(
                    f"the desk in {self.workdir} already listens on {live_host} "
                    f"(pid {live['pid']}), not {self.host}: stop it first")
            if not self.schema_current():
                log.warning("the running desk was provisioned from an older schema: run "
                            "stop, then provision, then start")
            self._wait_ready(live["pid"], deadline_s)
            log.info("desk already running at %s (pid %s)", self.url, live["pid"])
            return False
        self.pid_file.unlink(missing_ok=True)
        if port_in_use(self.port, self.host):
            raise EmbeddedDeskError(
                f"port {self.port} on {self.host} is already in use by another process; "
                f"stop it or choose another port (--port N or DESK_PORT)")
        if not self.rt_installed():
            raise EmbeddedDeskError(f"RT 5 is not installed ({RT_SERVER} missing): run the "
                            "`install` command first")
        self.provision()
        self.write_config()
        cmd = [str(RT_SERVER), "--host", self.host, "--port", str(self.port),
               "--max-workers", str(self.workers)]
        logfh = open(self.server_log, "ab")  # noqa: SIM115 - handed to the child
        try:
            logfh.write(f"\n=== start {datetime.now(UTC).isoformat()} "
                        f"{' '.join(cmd)}\n".encode())
            logfh.flush()
            # start_new_session: own session and process group (setsid), so stop can
            # signal master and workers together and a Ctrl-C in our shell cannot hit it.
            self._proc = subprocess.Popen(
                cmd, env=self.rt_env(), cwd=self.workdir, stdin=subprocess.DEVNULL,
                stdout=logfh, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_die_with_parent if stop_with_parent else None)
        finally:
            logfh.close()
        pid = self._proc.pid
        self.pid_file.write_text(json.dumps({
            "pid": pid, "pgid": pid, "host": self.host, "port": self.port,
            "workers": self.workers,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }))
        t0 = time.monotonic()
        try:
            self._wait_ready(pid, deadline_s)
        except EmbeddedDeskError:
            self.stop()
            raise
        log.info("desk started at %s in %.1f s (pid %s, %d workers, listening on %s)",
                 self.url, time.monotonic() - t0, pid, self.workers, self.host)
        return True

    def _wait_ready(self, pid: int, deadline_s: float) -> None:
        deadline = time.monotonic() + deadline_s
        delay = 0.1
        while True:
            if self._proc is not None and self._proc.pid == pid:
                self._proc.poll()
            if not _pid_alive(pid):
                raise EmbeddedDeskError(f"rt-server exited during start-up; see "
                                        f"{self.server_log}:\n" + self._log_tail())
            if self.is_ready(timeout=min(5.0, max(0.5, deadline - time.monotonic()))):
                return
            if time.monotonic() >= deadline:
                raise EmbeddedDeskError(f"RT did not answer {READY_PATH} on {self.url} within "
                                f"{deadline_s:.0f} s; see {self.server_log}:\n"
                                + self._log_tail())
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.server_log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, deadline_s: float = 15.0) -> bool:
        """Stop the server's whole process group. Returns False if it was not running."""
        info = self._read_pid()
        pid = info.get("pid")
        pgid = info.get("pgid", pid)
        if not isinstance(pid, int) or not isinstance(pgid, int):
            self.pid_file.unlink(missing_ok=True)
            log.info("desk not running (no pid file)")
            return False
        # Only signal a group that still holds an rt-server: the pid may have been reused.
        members = [p for p in _group_pids(pgid) if "rt-server" in _cmdline(p)]
        if not members:
            self.pid_file.unlink(missing_ok=True)
            self._reap()
            log.info("desk not running (stale pid file removed)")
            return False
        # SIGTERM to the whole group: SIGINT to the master alone orphans its workers.
        self._signal_group(pgid, signal.SIGTERM)
        if not self._wait_group_gone(pgid, deadline_s):
            log.warning("rt-server group %s ignored SIGTERM for %.0f s: SIGKILL", pgid,
                        deadline_s)
            self._signal_group(pgid, signal.SIGKILL)
            if not self._wait_group_gone(pgid, 5.0):
                raise EmbeddedDeskError(f"could not stop rt-server process group {pgid}")
        self.pid_file.unlink(missing_ok=True)
        log.info("desk stopped (pid %s)", pid)
        return True

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            pass

    def _reap(self) -> None:
        if self._proc is not None:
            try:
                self._proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
            else:
                self._proc = None

    def _wait_group_gone(self, pgid: int, deadline_s: float) -> bool:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if self._proc is not None:
                self._proc.poll()
            if not _group_pids(pgid):
                self._reap()
                return True
            time.sleep(0.1)
        return False

    # ----------------------------------------------------------------- status
    def ticket_count(self) -> int | None:
        """Tickets in the database (not merged-away ones), read straight from SQLite."""
        if not self.db_path.exists():
            return None
        try:
            conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=5)
            try:
                row = conn.execute("SELECT count(*) FROM Tickets WHERE id = EffectiveId "
                                   "AND Type = 'ticket'").fetchone()
            finally:
                conn.close()
        except sqlite3.Error:
            return None
        return int(row[0])

    def status(self) -> DeskStatus:
        live = self._live_pid()
        seeded = None
        if self.seeded_marker.exists():
            try:
                seeded = json.loads(self.seeded_marker.read_text())
            except ValueError:
                seeded = None
        provisioned = self.is_provisioned()
        if live:
            port = int(live.get("port", self.port))
            pgid = int(live.get("pgid", live["pid"]))
            host = str(live.get("host") or DEFAULT_HOST)
            connect = DEFAULT_HOST if host in ("0.0.0.0", "") else host
            return DeskStatus(
                running=True, url=f"http://{connect}:{port}", pid=live["pid"], port=port,
                workers=live.get("workers"), tickets=self.ticket_count(),
                memory_mb=_pss_mb(_group_pids(pgid)), provisioned=provisioned,
                schema_current=provisioned and self.schema_current(), seeded=seeded)
        return DeskStatus(running=False, url=self.url, tickets=self.ticket_count(),
                          provisioned=provisioned,
                          schema_current=provisioned and self.schema_current(),
                          seeded=seeded)

    # ------------------------------------------------------------------- seed
    def seed(self, count: int = 2000, seed: int = 42, now: datetime | None = None,
             force: bool = False) -> dict[str, Any]:
        """Load ``count`` generated tickets once; see ``seeding.seed_desk``."""
        from incident_ops.embedded_desk.seeding import seed_desk

        return seed_desk(self, count=count, seed=seed, now=now, force=force)

    def import_tickets(self, records: Sequence[SeedTicket]) -> dict[str, str]:
        """Import tickets with their own past dates and history; see
        ``seeding.import_records``. Returns record key -> ticket id."""
        from incident_ops.embedded_desk.seeding import import_records

        return import_records(self, records)


def perl() -> str:
    return shutil.which("perl") or "/usr/bin/perl"
