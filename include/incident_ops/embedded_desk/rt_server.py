"""The ``rt-server`` process of the embedded desk: started in its own process group, found
again through its pid file, stopped with the whole group; and the OS helpers it needs.

``ServerProcess`` is the start/stop part of ``EmbeddedDesk`` (``desk.py``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

log = logging.getLogger("incident_ops.embedded_desk")

RT_PREFIX = Path("/usr/share/request-tracker5")
RT_SERVER = RT_PREFIX / "libexec" / "rt-server"
RT_LIB = RT_PREFIX / "lib"
DEFAULT_HOST = "127.0.0.1"  # loopback unless told otherwise (a container: 0.0.0.0)
READY_PATH = "/REST/2.0/queues/all"


class EmbeddedDeskError(RuntimeError):
    """The embedded desk could not do what was asked; the message says why and what to do."""


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


def perl() -> str:
    return shutil.which("perl") or "/usr/bin/perl"


class ServerProcess:
    """Start, stop and find ``rt-server`` (a mixin of ``EmbeddedDesk``: what it uses of the
    desk is declared below)."""

    if TYPE_CHECKING:
        workdir: Path
        host: str
        port: int
        workers: int
        _proc: subprocess.Popen[bytes] | None

        @property
        def url(self) -> str: ...

        @property
        def auth(self) -> tuple[str, str]: ...

        @property
        def pid_file(self) -> Path: ...

        @property
        def server_log(self) -> Path: ...

        @staticmethod
        def rt_installed() -> bool: ...

        def rt_env(self, db_path: Path | None = None) -> dict[str, str]: ...

        def schema_current(self) -> bool: ...

        def provision(self, force: bool = False) -> bool: ...

        def write_config(self) -> None: ...

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
