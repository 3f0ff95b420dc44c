"""The embedded desk: a private Request Tracker 5 on loopback, for the demo and the tests.

``EmbeddedDesk`` installs RT from Debian's packages when it is missing, provisions a
project-local SQLite database with the process's schema, starts and stops ``rt-server`` in
its own process group (``rt_server.py``), reports its status and seeds realistic tickets
(``seeding.py``). The CLI in ``__main__`` wraps it; the integration tests call it directly.

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
import sqlite3
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from incident_ops.embedded_desk import rtconfig
from incident_ops.embedded_desk.rt_server import (
    DEFAULT_HOST,
    RT_SERVER,
    EmbeddedDeskError,
    ServerProcess,
    _group_pids,
    _pss_mb,
    _run,
)

if TYPE_CHECKING:
    from incident_ops.embedded_desk.seed_data import SeedTicket

log = logging.getLogger("incident_ops.embedded_desk")

RT_SETUP_DATABASE = Path("/usr/sbin/rt-setup-database-5")
DEBIAN_SITE_CONFIG_DIR = Path("/etc/request-tracker5/RT_SiteConfig.d")
# rt5-standalone is the first alternative request-tracker5 needs anyway; naming it makes
# sure the Starlet server rt-server runs on is there.
APT_PACKAGES = ("request-tracker5", "rt5-db-sqlite", "rt5-standalone")

DEFAULT_PORT = 8480
DEFAULT_WORKERS = 4
ROOT_USER = "root"
ROOT_PASSWORD = "password"  # RT's documented default on a fresh database: demo only

# <repo>/include/incident_ops/embedded_desk/desk.py; an installed (non-editable) package has
# no repository around it, so fall back to the current directory.
_CANDIDATE_ROOT = Path(__file__).resolve().parents[3]
REPO_ROOT = _CANDIDATE_ROOT if (_CANDIDATE_ROOT / "pyproject.toml").exists() else Path.cwd()
OUR_SITE_CONFIG = "90-embedded-desk.pm"




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



class EmbeddedDesk(ServerProcess):
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
        # RT 5 turns every query's literals into bind values by scanning the SQL in Perl,
        # one character at a time: a tenth of the seeder's time, and of a search's. SQLite
        # gains nothing from binds (no plan cache across statements); values stay quoted.
        env.setdefault("SB_PREFER_BIND", "0")
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
