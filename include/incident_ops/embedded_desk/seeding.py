"""Load the generated sample tickets into the embedded desk, once.

The records come from ``seed_data.generate`` (pure); ``seed.pl`` writes them through RT's
own Perl API in one process, which is two orders of magnitude faster than REST and writes
exactly the rows RT would (history, custom-field values, links). A marker in the workdir
(``seeded.json``, removed by provisioning) keeps a second run from doubling the data.
"""

from __future__ import annotations

import json
import logging
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from incident_ops.embedded_desk import seed_data
from incident_ops.embedded_desk.rt_server import EmbeddedDeskError, perl
from incident_ops.embedded_desk.rtconfig import load_yaml

log = logging.getLogger("incident_ops.embedded_desk")

SEED_SCRIPT = Path(__file__).with_name("seed.pl")
PROGRESS_EVERY_S = 10.0  # a line at least this often while tickets load (make demo shows it)


class _Where(Protocol):
    @property
    def port(self) -> int | None: ...

    @property
    def workers(self) -> int | None: ...


class SeedableDesk(Protocol):
    """What seeding uses of ``EmbeddedDesk`` (whose ``seed`` and ``import_tickets`` call it)."""

    workdir: Path
    config_dir: Path | None
    port: int
    workers: int

    @property
    def seeded_marker(self) -> Path: ...

    def status(self) -> _Where: ...

    def is_provisioned(self) -> bool: ...

    def is_running(self) -> bool: ...

    def provision(self, force: bool = False) -> bool: ...

    def write_config(self) -> None: ...

    def rt_env(self) -> dict[str, str]: ...

    def start(self) -> bool: ...

    def stop(self) -> bool: ...


def seed_desk(desk: SeedableDesk, *, count: int, seed: int, now: datetime | None = None,
              force: bool = False, timeout_s: float = 900.0) -> dict[str, Any]:
    """Seed ``desk`` with ``count`` tickets from RNG seed ``seed``; a no-op if already seeded.

    ``force`` wipes the desk (re-provisions) first, restarting a server it stops.
    """
    if desk.seeded_marker.exists() and not force:
        previous = json.loads(desk.seeded_marker.read_text())
        log.info("desk already seeded (%s tickets, seed %s): nothing to do; use --force to "
                 "wipe and seed again", previous.get("count"), previous.get("seed"))
        return {**previous, "status": "already-seeded"}
    was_running = False
    if force:
        before = desk.status()
        was_running = desk.stop()
        if was_running and before.port:
            desk.port = before.port  # restart it where its users expect it
            desk.workers = before.workers or desk.workers
        desk.provision(force=True)
    else:
        if not desk.is_provisioned() and desk.is_running():
            raise EmbeddedDeskError("the running desk has no provisioning marker; stop it and "
                            "provision first")
        if not desk.is_running():
            desk.provision()
    if not desk.is_running():
        # The loader reads the same private config; a running server already wrote it
        # (for its own port, which a rewrite from here might not know).
        desk.write_config()

    if now is None:
        now = datetime.now(UTC).replace(second=0, microsecond=0)
    vocabulary = load_yaml("vocabulary.yaml", desk.config_dir)
    ranks = {code: int(attrs["rank"]) for code, attrs in vocabulary["priorities"].items()}
    t0 = time.monotonic()
    records = seed_data.generate(count, seed, now, vocabulary=vocabulary,
                                 contacts=load_yaml("contacts.yaml", desk.config_dir))
    payload = "".join(json.dumps(r.to_json(ranks), ensure_ascii=False) + "\n"
                      for r in records)
    gen_s = time.monotonic() - t0

    t1 = time.monotonic()
    ids, stderr, returncode = _run_loader(desk, payload, timeout_s, total=len(records))
    load_s = time.monotonic() - t1
    (desk.workdir / "seed-ids.jsonl").write_text(
        "".join(json.dumps(i) + "\n" for i in ids))
    if returncode not in (0, 2) or len(ids) != len(records):
        raise EmbeddedDeskError(f"seeding failed after {len(ids)} of {len(records)} tickets "
                        f"(exit {returncode}):\n{stderr[-3000:]}")
    errors = [line for line in stderr.splitlines() if line.startswith("seed: ")
              and "loaded" not in line]
    result = {
        "status": "seeded", "count": len(records), "seed": seed,
        "now": now.isoformat(), "first_id": ids[0]["id"] if ids else None,
        "last_id": ids[-1]["id"] if ids else None,
        "generate_s": round(gen_s, 2), "load_s": round(load_s, 1),
        "tickets_per_s": round(len(records) / load_s, 1) if load_s else None,
        "warnings": len(errors),
        "ids_file": str(desk.workdir / "seed-ids.jsonl"),
    }
    desk.seeded_marker.write_text(json.dumps(result, indent=1))
    for line in errors[:20]:
        log.warning("%s", line)
    log.info("seeded %d tickets in %.1f s (%.1f tickets/s)", len(records), load_s,
             len(records) / load_s if load_s else 0)
    if was_running:
        desk.start()
    return result


def progress_line(done: int, total: int, elapsed_s: float) -> str:
    """``seeding: 480/2000 tickets, 4.3/s, about 5 min 53 s left`` (no rate before the first)."""
    if done <= 0 or elapsed_s <= 0:
        return f"seeding: {done}/{total} tickets (starting RT, {elapsed_s:.0f} s)"
    rate = done / elapsed_s
    left = max(total - done, 0) / rate
    eta = f"{int(left // 60)} min {int(left % 60)} s" if left >= 60 else f"{left:.0f} s"
    return f"seeding: {done}/{total} tickets, {rate:.1f}/s, about {eta} left"


def _run_loader(desk: SeedableDesk, payload: str, timeout_s: float, *, total: int = 0,
                every_s: float = PROGRESS_EVERY_S) -> tuple[list[dict[str, Any]], str, int]:
    """Run ``seed.pl`` over JSON lines: ({key, id} per loaded ticket, its stderr, exit code).

    With ``total``, logs a progress line (done/total, rate, time left) every ``every_s``
    seconds while it loads: the loader prints one line per ticket as it goes.
    """
    ids: list[dict[str, Any]] = []
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen([perl(), str(SEED_SCRIPT)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=errors, env=desk.rt_env(),
                                cwd=desk.workdir)
        assert proc.stdin is not None and proc.stdout is not None
        stdin, stdout = proc.stdin, proc.stdout

        def feed() -> None:  # a pipe holds 64 KB: write while the loader reads
            try:
                stdin.write(payload.encode())
                stdin.close()
            except BrokenPipeError:
                pass  # the loader died: its exit code and stderr say why

        def collect() -> None:
            for line in stdout:
                if line.strip():
                    ids.append(json.loads(line))

        threads = [threading.Thread(target=feed, daemon=True),
                   threading.Thread(target=collect, daemon=True)]
        for thread in threads:
            thread.start()
        started = time.monotonic()
        end = started + timeout_s
        while True:
            try:
                proc.wait(timeout=max(0.0, min(every_s, end - time.monotonic())))
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() >= end:
                    proc.kill()
                    proc.wait()
                    raise EmbeddedDeskError(f"loading tickets did not finish within "
                                            f"{timeout_s:.0f} s") from None
                if total:
                    log.info("%s", progress_line(len(ids), total, time.monotonic() - started))
        for thread in threads:
            thread.join()
        errors.seek(0)
        stderr = errors.read().decode(errors="replace")
    if total:
        log.info("%s", progress_line(len(ids), total, time.monotonic() - started))
    return ids, stderr, proc.returncode


def import_records(desk: SeedableDesk, records: Sequence[seed_data.SeedTicket], *,
                   timeout_s: float = 300.0) -> dict[str, str]:
    """Import tickets with their own past (creation, history, resolution dates) through
    RT's own Perl API, as a migration from another system would; returns key -> ticket id.

    This is how back-dated tickets get into the desk: since Debian's RT security update
    ``5.0.3+dfsg-3~deb12u7`` REST2 drops ``Created`` (and the other immutable fields) from
    a create body, so a REST import would give every ticket today's creation date.
    Works on a running desk. Any refusal (an unknown user, field or status) fails the
    import, naming the record.
    """
    if not records:
        return {}
    vocabulary = load_yaml("vocabulary.yaml", desk.config_dir)
    ranks = {code: int(attrs["rank"]) for code, attrs in vocabulary["priorities"].items()}
    if not desk.is_running():
        desk.write_config()
    payload = "".join(json.dumps(r.to_json(ranks), ensure_ascii=False) + "\n"
                      for r in records)
    ids, stderr, returncode = _run_loader(desk, payload, timeout_s)
    problems = [line for line in stderr.splitlines()
                if line.startswith("seed: ") and "loaded" not in line]
    if returncode != 0 or problems or len(ids) != len(records):
        raise EmbeddedDeskError(f"import of {len(records)} tickets failed after {len(ids)} "
                        f"(exit {returncode}):\n" + "\n".join(problems or [stderr[-3000:]]))
    return {str(row["key"]): str(row["id"]) for row in ids}
