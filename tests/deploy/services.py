"""Real PostgreSQL, Redis and Airflow processes on loopback for the distributed-run test.

Everything here starts a process in its own session (own process group), logs to a file,
waits for readiness by polling with a deadline and stops by signalling the whole group
(SIGTERM, then SIGKILL after a deadline). Each process also gets SIGTERM from the kernel if
the pytest process dies (``PR_SET_PDEATHSIG``), so a killed session leaves nothing behind.

PostgreSQL comes from Debian's packages (``postgresql``; 15 on Debian 12). It refuses to
run as root, so as root its commands run as the ``postgres`` user through ``runuser`` in a
data directory that user owns; as anyone else they run directly.
"""

from __future__ import annotations

import ctypes
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"


class ServiceError(RuntimeError):
    """A service did not start or answer in time; the message carries its log's tail."""


def _pdeathsig() -> None:
    """In the child before exec: SIGTERM when the parent (pytest) dies.

    SIGTERM, not SIGKILL: ``runuser`` forwards it to the server it runs.
    """
    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], deadline_s: float, what: str,
               alive: Callable[[], None] | None = None, interval: float = 0.2) -> float:
    """Poll ``check`` until true; returns seconds waited. ``alive`` raises if a process died."""
    start = time.monotonic()
    deadline = start + deadline_s
    while True:
        if alive is not None:
            alive()
        if check():
            return time.monotonic() - start
        if time.monotonic() >= deadline:
            raise ServiceError(f"{what}: not ready within {deadline_s:.0f} s")
        time.sleep(interval)


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Proc:
    """One long-running command in its own process group, logging to ``log``."""

    def __init__(self, name: str, cmd: Sequence[str], log: Path, *,
                 env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.name, self.cmd, self.log = name, list(cmd), log
        with open(log, "ab") as fh:
            self.popen = subprocess.Popen(
                self.cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=fh,
                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_pdeathsig)

    def check_alive(self) -> None:
        code = self.popen.poll()
        if code is not None:
            raise ServiceError(f"{self.name} exited with {code} during start-up; "
                               f"{self.log}:\n{tail(self.log)}")

    def stop(self, deadline_s: float = 20.0, first: signal.Signals = signal.SIGTERM) -> None:
        """``first`` (SIGTERM) to the group, SIGKILL to what is left after ``deadline_s``."""
        pgid = self.popen.pid  # start_new_session: the leader's pid is the group id
        for sig, wait_s in ((first, deadline_s), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            if _group_gone(pgid, wait_s, self.popen):
                break
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def _group_gone(pgid: int, deadline_s: float, leader: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        leader.poll()  # reap the leader so it does not linger as a zombie member
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        if leader.returncode is not None and not _live_members(pgid):
            return True
        time.sleep(0.1)
    return False


def _live_members(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pgid:
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            pids.append(int(entry.name))
    return pids


# --------------------------------------------------------------------------- PostgreSQL
def pg_bindir() -> Path | None:
    dirs = sorted(glob.glob(PG_BIN_GLOB), key=lambda d: int(Path(d).parent.name)
                  if Path(d).parent.name.isdigit() else 0)
    return Path(dirs[-1]) if dirs and (Path(dirs[-1]) / "initdb").exists() else None


class Postgres:
    """A private PostgreSQL cluster on 127.0.0.1:<port>, trust auth, user ``airflow``."""

    user = "airflow"

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        # Not under pytest's tmp_path: that is private to root (0700) and the server runs
        # as the postgres user when we are root.
        self.root = Path(tempfile.mkdtemp(prefix="incident-ops-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        self.proc: Proc | None = None

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if self.as_root else list(args)

    def start(self, deadline_s: float = 60.0) -> None:
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        env = dict(os.environ, LC_ALL="C.UTF-8", LANG="C.UTF-8")
        proc = subprocess.run(
            self._cmd(str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.user,
                      "--auth=trust", "-E", "UTF8", "--no-sync"),
            capture_output=True, text=True, timeout=120, env=env, check=False)
        if proc.returncode != 0:
            raise ServiceError(f"initdb failed:\n{proc.stdout}\n{proc.stderr}")
        log = self.root / "postgres.log"
        log.touch()
        if self.as_root:
            shutil.chown(log, "postgres", "postgres")
        # Durability off: a throwaway cluster for one test session.
        self.proc = Proc("postgres", self._cmd(
            str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "max_connections=200"), log, env=env)
        wait_until(lambda: self._connects("postgres"), deadline_s, "PostgreSQL",
                   self.proc.check_alive)
        conn = self.connect("postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE airflow")
        conn.close()

    def dsn(self, db: str = "airflow") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{db}"

    def connect(self, db: str = "airflow"):  # -> psycopg2 connection
        import psycopg2

        return psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, dbname=db,
                                connect_timeout=5)

    def _connects(self, db: str) -> bool:
        import psycopg2

        try:
            self.connect(db).close()
        except psycopg2.OperationalError:
            return False
        return True

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall())
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc is not None:
            # SIGINT: "fast" shutdown (SIGTERM would wait for every client to leave).
            self.proc.stop(first=signal.SIGINT)
        shutil.rmtree(self.root, ignore_errors=True)


# -------------------------------------------------------------------------------- Redis
class Redis:
    """redis-server on 127.0.0.1:<port>, no persistence."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.root = Path(tempfile.mkdtemp(prefix="incident-ops-redis-"))
        self.port = free_port()
        self.proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, deadline_s: float = 30.0) -> None:
        self.proc = Proc("redis", [
            self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
            "--appendonly", "no", "--dir", str(self.root), "--daemonize", "no",
            "--protected-mode", "yes"], self.root / "redis.log")
        wait_until(self._pong, deadline_s, "Redis", self.proc.check_alive)

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
        shutil.rmtree(self.root, ignore_errors=True)


# ----------------------------------------------------------------- Debian's packages
def apt_install(*packages: str, timeout: float = 900.0) -> str | None:
    """Install Debian packages if we can; returns None on success, else why not.

    ``make install`` installs them already; this is the fallback for a test run on a
    machine where it did not (root only, bounded in time, ``apt-get update`` only when the
    package lists are missing or stale).
    """
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return (f"not root or no apt-get: install {' '.join(packages)} "
                f"(apt-get install -y {' '.join(packages)}, or `make install`)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    deadline = time.monotonic() + timeout
    out = ""
    for update_first in (False, True):
        try:
            if update_first:
                subprocess.run(["apt-get", "update"], env=env, capture_output=True,
                               timeout=max(1.0, deadline - time.monotonic()), check=False)
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                                  timeout=max(1.0, deadline - time.monotonic()), check=False)
        except subprocess.TimeoutExpired:
            return f"apt-get install {' '.join(packages)} did not finish in {timeout:.0f} s"
        if proc.returncode == 0:
            return None
        out = (proc.stdout + proc.stderr)[-1500:]
    return f"apt-get install {' '.join(packages)} failed:\n{out}"
