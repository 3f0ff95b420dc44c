"""Benchmark: throughput of the RT adapter's operations on the embedded desk.

    PYTHONPATH=include .venv/bin/python bench/bench_desk.py [--url http://127.0.0.1:8480]
        [--user root --password password] [--repeat 10]

Measures, through ``RequestTrackerDesk`` (so retries, message checks and version queries
are included): one GET, one conditional PUT, one bulk PUT of 100 changes, one search page
of 100 tickets (with its versions), one create (key look-up + POST), one comment. Prints
ops/s, ms per op and desk requests per op, then what a closing run costs in requests per
closed ticket (search + bulk close). Works on its own 100 tickets (System = bench-desk,
created once through the bulk endpoint and reused), never on the demo's. Results are
recorded in the README, never asserted as timings in tests.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))

from incident_ops.desk.port import TicketQuery  # noqa: E402
from incident_ops.desk.rt import RequestTrackerDesk, RTClient  # noqa: E402
from incident_ops.model import ChangeResult, TicketChange, TicketDraft  # noqa: E402

MARKER = "bench-desk"
BATCH = 100


@dataclass
class Row:
    name: str
    ops: int
    seconds: float
    requests: int
    unit: str = "op"

    def line(self) -> str:
        ms = self.seconds / self.ops * 1000
        return (f"{self.name:<28} {self.ops:>6} {self.ops / self.seconds:>10.1f} {ms:>10.1f}"
                f" {self.requests / self.ops:>12.2f}  per {self.unit}")


def measure(desk: RequestTrackerDesk, name: str, ops: int, run: Callable[[], None],
            unit: str = "op") -> Row:
    before = desk.client.requests_made
    start = time.perf_counter()
    run()
    return Row(name, ops, time.perf_counter() - start, desk.client.requests_made - before, unit)


def ensure_tickets(desk: RequestTrackerDesk) -> list[str]:
    """The bench's own 100 tickets, made once with the bulk create endpoint."""
    query = TicketQuery(fields={"system": MARKER})
    have = [t.id for t in desk.search(query)]
    missing = BATCH - len(have)
    for start in range(0, max(0, missing), 25):
        batch = [{"Queue": "Incidents", "Subject": f"{MARKER} ticket {len(have) + start + i}",
                  "Priority": 50, "CustomFields": {"System": MARKER, "Source": "monitoring"}}
                 for i in range(min(25, missing - start))]
        desk.client.json("POST", "/tickets/bulk", kind="write", json=batch)
    return [t.id for t in desk.search(query)][:BATCH]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8480")
    parser.add_argument("--user", default="root")
    parser.add_argument("--password", default="password")
    parser.add_argument("--repeat", type=int, default=10, help="single operations per row")
    args = parser.parse_args(argv)

    client = RTClient(args.url, user=args.user, password=args.password, timeout=(5, 120))
    desk = RequestTrackerDesk(client, page_size=BATCH)
    ok, message = desk.ping()
    if not ok:
        print(f"desk not reachable: {message}", file=sys.stderr)
        return 2
    print(f"{message}; preparing {BATCH} bench tickets ...", flush=True)
    ids = ensure_tickets(desk)
    query = TicketQuery(fields={"system": MARKER})
    n = args.repeat
    run_id = uuid.uuid4().hex[:6]
    rows: list[Row] = []

    rows.append(measure(desk, "GET one ticket", n, lambda: [desk.get(ids[i]) for i in range(n)]))

    def puts() -> None:
        for i in range(n):
            version = desk.get(ids[i]).version
            start = time.perf_counter()
            desk.update(TicketChange(ids[i], fields={"automation": f"bench {run_id} put {i}"},
                                     expected_version=version))
            put_times.append(time.perf_counter() - start)

    put_times: list[float] = []
    row = measure(desk, "PUT (If-Match)", n, puts)
    row.seconds, row.requests = sum(put_times), n  # the GETs above only fetched versions
    rows.append(row)

    page_rows = []
    for _ in range(3):
        page_rows.append(measure(desk, "search page of 100", 1, lambda: list(desk.search(query)),
                                 unit="page"))
    rows.append(min(page_rows, key=lambda r: r.seconds))
    tickets = list(desk.search(query))

    changes = [TicketChange(t.id, fields={"automation": f"bench {run_id} bulk"},
                            expected_version=t.version) for t in tickets]
    outcomes: list[ChangeResult] = []
    bulk = measure(desk, "bulk PUT (n=100), per ticket", len(changes),
                   lambda: outcomes.extend(desk.bulk_update(changes)), unit="ticket")
    rows.append(bulk)

    def creates() -> None:
        for i in range(n):
            desk.create(TicketDraft(queue="Incidents", subject=f"{MARKER} create {run_id} {i}",
                                    description="bench", idempotency_key=f"{MARKER}-{run_id}-{i}",
                                    fields={"system": f"{MARKER}-created"}))

    rows.append(measure(desk, "create (key look-up + POST)", n, creates))
    rows.append(measure(desk, "comment", n, lambda: [
        desk.comment(ids[i], f"bench {run_id} comment {i}") for i in range(n)]))

    print(f"\n{'operation':<28} {'ops':>6} {'ops/s':>10} {'ms/op':>10} {'requests/op':>12}")
    for r in rows:
        print(r.line())
    done = sum(1 for o in outcomes if o.outcome == "done")
    page = rows[2]
    per_closed = (page.requests + bulk.requests) / max(1, done)
    print(f"\nbulk outcomes: {done} done of {len(outcomes)}")
    print(f"closing run (search + bulk close of {BATCH}): {page.requests + bulk.requests} "
          f"requests, {per_closed:.3f} desk requests per closed ticket, "
          f"{(page.seconds + bulk.seconds) / max(1, done) * 1000:.1f} ms per closed ticket")
    print(f"total desk requests this run: {client.requests_made} (retries: {client.retries_made})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
