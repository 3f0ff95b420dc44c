"""Benchmark: one full closure pass (fetch → decide → apply) against its floor.

    PYTHONPATH=include .venv/bin/python bench/bench_closure.py [--masters 300]
        [--port N] [--workdir /tmp/bench-closure-...] [--keep] [--profile FILE]

On a private embedded desk (its own workdir under /tmp and a free port, never the demo's):

0. warms the desk up with one unmeasured pass over a small set (a fresh RT server compiles
   its code paths on first use; without this the first measurement pays for it);
1. seeds data set A: ``--masters`` resolved monitoring alarms with complete records, each
   with 2 duplicates (``MemberOf`` the master; the first resolved, the second still open),
   and data set B, identical but ten days older. Seeding goes through the embedded desk's
   Perl loader (RT's own API, in one process); its time is printed, not measured;
2. measures, back to back and in alternating order:
   - one closure pass over A with the pipeline's real code, split as the DAG splits it: the
     plan task (``fetch_closure_batch`` with the watermark of a DAG run in steady state, the
     previous run's fetch start: it sees this round's set and nothing earlier rounds closed;
     ``decide_closure``; the plan through a JSON round trip as through XCom) and the apply
     task (``Applier.apply`` under the pipeline's desk lease, a no-op notifier: alarms send
     no mail), each with its own adapter as each Airflow task builds its own. B lies before
     the watermark, so the pipeline never sees it;
   - then, not measured in the ratio, the next scheduled run (it reads the masters the pass
     closed once more, light, and finds nothing to do): its time and requests are printed;
   - the floor over B: a bare loop of the minimal bulk calls for the same updates with raw
     ``requests`` (one search for the ids to close, then ``PUT /tickets/bulk`` in chunks of
     100 with Status=closed, the Close Code and the Automation field the issue asks every
     changed ticket to carry);
3. repeats 1-2 ``--rounds`` times (default 2) and prints, per round and as the median: wall
   time, closures/s, desk requests per closed ticket, the floor, ratio = pipeline time /
   floor time, and the ratio of CPU seconds (desk server processes + this process);
4. (unless ``--no-bare-floor``) measures the bare floor, the same without the Automation
   field, to show what that audit record costs the desk.

This machine's speed drifts by tens of percent from one minute to the next: the pairs are
measured seconds apart for that reason, and the median is the figure to read.

Goals (issue): >= 25 closures/s, ratio <= 1.3. Numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))

from _common import (  # noqa: E402
    CountingNotifier,
    free_port,
    read_only,
    rest_session,
    rt_time,
    seed,
)

from incident_ops.config import load_contacts, load_vocabulary, load_yaml  # noqa: E402
from incident_ops.desk.rt import RequestTrackerDesk, RTClient  # noqa: E402
from incident_ops.embedded_desk import EmbeddedDesk  # noqa: E402
from incident_ops.engine import Applier, Lease, MemoryOutbox, holder_id  # noqa: E402
from incident_ops.model import CLOSED  # noqa: E402
from incident_ops.pipelines.resolved import fetch_closure_batch  # noqa: E402
from incident_ops.policy.closure import ClosurePolicy, decide_closure  # noqa: E402
from incident_ops.policy.plan import Plan  # noqa: E402

DUPLICATES = 2
WARM_MASTERS = 20
FLOOR_AGE = timedelta(days=10)  # the floor's set lies this far before the watermark
SKEW = timedelta(seconds=60)  # the DAG's clock-skew margin on its watermark
LEAD = timedelta(hours=50)  # a round's "now": its seeded history ends after the watermark
CLOSE_CODE = "self-healed"


def records(tag: str, masters: int, now: datetime, rng: random.Random) -> list[dict[str, Any]]:
    """Seed-loader records (``seed.pl`` input): masters first, then their duplicates."""
    out: list[dict[str, Any]] = []
    for m in range(masters):
        created = now - timedelta(hours=rng.uniform(3, 48))
        resolved = created + timedelta(minutes=rng.uniform(10, 90))
        ci = f"{tag}-ci-{m:04d}"
        base_cf = {"Source": "monitoring", "Category": "alarm", "System": "billing",
                   "Impact": "medium", "Configuration Item": ci,
                   "Dispatched By Help Desk": "no"}
        key = f"{tag}-m{m}"
        out.append({
            "key": key, "queue": "Incidents", "subject": f"[{tag}] 告警 主单 {m}",
            "description": f"监控告警 {ci}", "priority": 70, "created": rt_time(created),
            "creator": "root", "status": "new", "requestor": None, "cf": base_cf,
            "member_of": None, "refers_to": [],
            "events": [{"at": rt_time(resolved), "actor": "liu.yang", "status": "resolved",
                        "owner": "liu.yang", "comment": None,
                        "cf": {"Resolver Role": "l2", "Handler Tier": "l2",
                               "Solution": "重启计费进程 restarted", "Close Code": CLOSE_CODE,
                               "Completed At": rt_time(resolved)}}],
        })
        for d in range(DUPLICATES):
            at = created + timedelta(minutes=1 + d)
            dup: dict[str, Any] = {
                "key": f"{tag}-m{m}-d{d}", "queue": "Incidents",
                "subject": f"[{tag}] 告警 重复 {m}.{d}", "description": f"重复告警 {ci}",
                "priority": 70, "created": rt_time(at), "creator": "root", "status": "new",
                "requestor": None, "cf": base_cf, "member_of": key, "refers_to": [],
                "events": [],
            }
            if d % 2 == 0:  # the first duplicate resolved with the master, the second open
                dup["events"] = [{"at": rt_time(resolved + timedelta(seconds=30)),
                                  "actor": "liu.yang", "status": "resolved",
                                  "owner": "liu.yang", "comment": None,
                                  "cf": {"Close Code": "duplicate"}}]
            out.append(dup)
    return out


def statuses(desk: EmbeddedDesk, ids: list[int]) -> Counter[str]:
    with read_only(desk.db_path) as conn:
        marks = ",".join("?" * len(ids))
        rows = conn.execute(f"SELECT Status FROM Tickets WHERE id IN ({marks})", ids).fetchall()
    return Counter(r[0] for r in rows)


def cpu_seconds(desk: EmbeddedDesk) -> float:
    """CPU seconds spent so far by the desk's server processes (workers included, reaped
    ones through their parent) and by this process: work done, whatever the machine's speed
    at the moment. Read from /proc; the desk's server leads its own process group."""
    pgid = int(json.loads(desk.pid_file.read_text())["pgid"])
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[2]) == pgid:  # pgrp; then utime, stime, cutime, cstime
            ticks += sum(int(x) for x in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK") + time.process_time()


def new_desk(url: str, user: str, password: str) -> RequestTrackerDesk:
    """The adapter as ``ServiceDeskHook`` builds it for the demo connection."""
    client = RTClient(url, user=user, password=password, timeout=(10.0, 120.0),
                      max_concurrency=4)
    return RequestTrackerDesk(client, page_size=100)


def pipeline_pass(url: str, user: str, password: str, now: datetime,
                  since: datetime | None = None) -> dict[str, Any]:
    policy = ClosurePolicy.from_dict(load_yaml("closure.yaml"))
    vocab, contacts = load_vocabulary(), load_contacts()
    run_id = f"bench__{uuid.uuid4().hex[:8]}"

    started = datetime.now(UTC)
    t0 = time.perf_counter()
    plan_desk = new_desk(url, user, password)  # the plan task
    batch = fetch_closure_batch(plan_desk, since, parallel=policy.read_parallelism)
    t_fetch = time.perf_counter()
    plan = decide_closure(batch.resolved, batch.related, policy, vocab, contacts, now, run_id)
    keys = {t.id: list(t.automation_keys) for t in batch.tickets.values()}
    xcom = json.loads(json.dumps({"plan": plan.to_dict(), "keys": keys}, default=str))
    plan_desk.close()
    t_plan = time.perf_counter()

    apply_desk = new_desk(url, user, password)  # the apply task
    plan2 = Plan.from_dict(xcom["plan"])
    notifier = CountingNotifier()  # alarms send no mail: anything sent is a bug in the data
    # As the apply task does it: under the pipeline's desk lease, with an outbox.
    lease = Lease(apply_desk, "bench_closure", holder_id(plan2.run_id, "apply"))
    outcomes = Applier(apply_desk, notifier, plan2.run_id, outbox=MemoryOutbox(), lease=lease,
                       bulk_size=policy.bulk_size).apply(plan2, xcom["keys"]).outcomes
    apply_desk.close()
    t_apply = time.perf_counter()
    return {
        "seconds": t_apply - t0, "fetch_s": t_fetch - t0, "decide_s": t_plan - t_fetch,
        "apply_s": t_apply - t_plan,
        "fetch_requests": plan_desk.client.requests_made,
        "apply_requests": apply_desk.client.requests_made,
        "retries": plan_desk.client.retries_made + apply_desk.client.retries_made,
        "resolved": len(batch.resolved), "related": len(batch.related),
        "plan": plan.by_kind(), "findings": len(plan.findings),
        "outcomes": Counter(o.outcome for o in outcomes), "mails": notifier.sent,
        "started": started,
    }


def floor_pass(url: str, user: str, password: str, tag: str,
               audit: bool = False) -> dict[str, Any]:
    """The least a client can do for the same updates: search ids, bulk PUT by 100.

    ``audit``: also write the audit field every pipeline close carries (Automation): the
    same updates as the pipeline, to tell the cost of those writes from its own overhead.
    """
    api = url + "/REST/2.0"
    t0 = time.perf_counter()
    # Logged in once, as the adapter's client is: without it the floor would be slower.
    session = rest_session(url, user, password)
    requests_made = 1
    sql = (f"Queue = 'Incidents' AND Subject LIKE '[{tag}]' AND Status != 'closed' "
           f"AND (Status = 'resolved' OR MemberOf IS NOT NULL)")
    ids: list[int] = []
    page = 1
    while True:
        data = session.get(api + "/tickets", params={
            "query": sql, "fields": "id", "per_page": 100, "page": page,
            "orderby": "id", "order": "ASC"}, timeout=120).json()
        requests_made += 1
        ids += [int(item["id"]) for item in data.get("items") or []]
        if not data.get("next_page"):
            break
        page += 1
    t_search = time.perf_counter()
    for start in range(0, len(ids), 100):
        fields: dict[str, Any] = {"Close Code": CLOSE_CODE}
        if audit:
            # the audit field every pipeline close carries (closes write no key: final)
            fields |= {"Automation": "100.7.4 close.handled-by-support · run bench__floor"}
        body = [{"id": i, "Status": "closed", "CustomFields": fields}
                for i in ids[start:start + 100]]
        resp = session.put(api + "/tickets/bulk", json=body, timeout=300)
        requests_made += 1
        resp.raise_for_status()  # per-ticket outcomes are checked on the desk afterwards
    t_end = time.perf_counter()
    session.close()
    return {"seconds": t_end - t0, "search_s": t_search - t0, "put_s": t_end - t_search,
            "ids": len(ids), "requests": requests_made}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--masters", type=int, default=300)
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--workdir", default="", help="default: a fresh dir under /tmp")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="leave the desk running")
    parser.add_argument("--profile", default="", help="cProfile the pipeline pass to FILE")
    parser.add_argument("--rounds", type=int, default=2,
                        help="pipeline/floor pairs measured, each on fresh data (median)")
    parser.add_argument("--no-bare-floor", action="store_true",
                        help="skip the third data set (floor without the Automation field)")
    args = parser.parse_args(argv)

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-closure-", dir="/tmp"))
    port = args.port or free_port()
    if port == 8480:
        raise SystemExit("8480 is the demo desk's port: choose another")
    desk = EmbeddedDesk(workdir, port=port, workers=args.workers)
    t = time.perf_counter()
    desk.provision()
    desk.start(stop_with_parent=True)
    print(f"private desk {desk.url} in {workdir} ({args.workers} workers), ready in "
          f"{time.perf_counter() - t:.1f} s", flush=True)
    try:
        return run(desk, args)
    finally:
        if not args.keep:
            desk.stop()


def measure_pipeline(desk: EmbeddedDesk, now: datetime, profiler: cProfile.Profile | None,
                     profile_path: str) -> tuple[dict[str, Any], float]:
    """One pipeline pass with the watermark of a run in steady state, and its CPU seconds.

    The watermark is the moment the pass starts: the round's set is dated after it, and
    nothing closed before it (earlier rounds, the floor of this one) is read again.
    """
    since = datetime.now(UTC)
    if profiler:
        profiler.enable()
    cpu = cpu_seconds(desk)
    result = pipeline_pass(desk.url, desk.user, desk.password, now, since=since)
    cpu = cpu_seconds(desk) - cpu
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile_path)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    return result, cpu


def measure_floor(desk: EmbeddedDesk, tag: str) -> tuple[dict[str, Any], float]:
    """The floor over the set ``tag``: the same updates as the pipeline (status, close code
    and the Automation field the issue requires on every changed ticket), fewest calls."""
    cpu = cpu_seconds(desk)
    floor = floor_pass(desk.url, desk.user, desk.password, tag, audit=True)
    return floor, cpu_seconds(desk) - cpu


def run(desk: EmbeddedDesk, args: argparse.Namespace) -> int:
    now = datetime.now(UTC).replace(microsecond=0)
    n = args.masters * (1 + DUPLICATES)

    # Warm-up (not measured): a fresh desk's server processes compile their code paths on
    # first use; one small pass through the pipeline's reads and writes warms them all, so
    # the pipeline and the floor are both measured warm.
    seed(desk, records(f"bcW{uuid.uuid4().hex[:6]}", WARM_MASTERS, now, random.Random(3)))
    warm = pipeline_pass(desk.url, desk.user, desk.password, now)
    print(f"warm-up pass: {warm['seconds']:.1f} s for "
          f"{warm['resolved'] + warm['related']} tickets (not measured)", flush=True)

    ok = True
    ratios: list[float] = []
    cpu_ratios: list[float] = []
    for r in range(1, args.rounds + 1):
        # Both sets are seeded first, then measured back to back (the order alternating by
        # round), so that the desk's speed has no minute to drift between the two. The
        # pipeline runs with a watermark, as the DAG does after its first run: the floor's
        # set lies ten days back, before it, so the pipeline never sees it.
        # Each round is a DAG run in steady state: it reads only what changed since its
        # watermark, not what earlier rounds (or this round's floor) closed. The round's set
        # is dated after the watermark (hours ahead of the wall clock: seeded history lies
        # hours before its "now"), the floor's set ten days before.
        now = datetime.now(UTC).replace(microsecond=0) + LEAD
        tag_a, tag_b = f"bcA{uuid.uuid4().hex[:6]}", f"bcB{uuid.uuid4().hex[:6]}"
        seed_a, ids_a = seed(desk, records(tag_a, args.masters, now, random.Random(7)))
        _, ids_b = seed(desk, records(tag_b, args.masters, now - FLOOR_AGE,
                                      random.Random(7)))
        print(f"round {r}: seeded 2 x {n} tickets ({args.masters} masters + "
              f"{args.masters * DUPLICATES} duplicates each) in {seed_a:.1f} s + ...; "
              f"{dict(statuses(desk, list(ids_a.values())))}", flush=True)
        profiler = cProfile.Profile() if args.profile and r == 1 else None

        if r % 2:
            result, cpu_pipeline = measure_pipeline(desk, now, profiler, args.profile)
            floor, cpu_floor = measure_floor(desk, tag_b)
        else:
            floor, cpu_floor = measure_floor(desk, tag_b)
            result, cpu_pipeline = measure_pipeline(desk, now, profiler, args.profile)
        # The next scheduled run: it reads the masters this pass closed once more (light)
        # and finds nothing to do. Reported, not part of the ratio.
        after = pipeline_pass(desk.url, desk.user, desk.password, now,
                              since=result["started"] - SKEW)
        after_a = statuses(desk, list(ids_a.values()))
        closed = after_a.get(CLOSED, 0)
        closed_b = statuses(desk, list(ids_b.values())).get(CLOSED, 0)
        ok = ok and closed == n and closed_b == n and result["resolved"] == 2 * args.masters
        cpu_ratios.append(cpu_pipeline / cpu_floor)

        requests_total = result["fetch_requests"] + result["apply_requests"]
        secs = result["seconds"]
        ratios.append(secs / floor["seconds"])
        first = "pipeline" if r % 2 else "floor"
        print(f"round {r} ({first} first): pipeline {secs:.2f} s (fetch {result['fetch_s']:.2f} "
              f"s, decide {result['decide_s']:.2f} s, apply {result['apply_s']:.2f} s)")
        print(f"  read {result['resolved']} resolved + {result['related']} related; plan "
              f"{result['plan']}; findings {result['findings']}; outcomes "
              f"{dict(result['outcomes'])}; mails {result['mails']}")
        print(f"  closed on the desk: {closed} of {n} ({dict(after_a)}); closures/s "
              f"{closed / secs:.1f}   (goal >= 25)")
        print(f"  desk requests: {requests_total} (fetch {result['fetch_requests']}, apply "
              f"{result['apply_requests']}, retries {result['retries']}) = "
              f"{requests_total / max(1, closed):.3f} per closed ticket")
        print(f"  floor (id search + bulk PUT by 100 of the same updates): "
              f"{floor['seconds']:.2f} s (search {floor['search_s']:.2f} s, PUTs "
              f"{floor['put_s']:.2f} s), {floor['requests']} requests, closed {closed_b} of "
              f"{n}, {closed_b / floor['seconds']:.1f} closures/s")
        print(f"  ratio pipeline/floor: {ratios[-1]:.2f}   (goal <= 1.3); apply/PUTs "
              f"{result['apply_s'] / floor['put_s']:.2f}, fetch {result['fetch_s']:.2f} s "
              f"vs the floor's search {floor['search_s']:.2f} s")
        print(f"  CPU (desk + client): pipeline {cpu_pipeline:.2f} s, floor {cpu_floor:.2f} s, "
              f"ratio {cpu_ratios[-1]:.2f}")
        print(f"  the run after: {after['seconds']:.2f} s, read {after['resolved']} resolved + "
              f"{after['related']} related, {after['fetch_requests'] + after['apply_requests']}"
              f" desk requests, plan {after['plan'] or 'empty'}", flush=True)

    if not args.no_bare_floor:
        tag_c = f"bcC{uuid.uuid4().hex[:6]}"
        _, ids_c = seed(desk, records(tag_c, args.masters, now, random.Random(7)))
        bare = floor_pass(desk.url, desk.user, desk.password, tag_c, audit=False)
        closed_c = statuses(desk, list(ids_c.values())).get(CLOSED, 0)
        print(f"bare floor (status and close code only, no Automation field): "
              f"{bare['seconds']:.2f} s (PUTs {bare['put_s']:.2f} s), closed {closed_c} of {n}")
    print(f"ratio pipeline/floor over {len(ratios)} rounds: median "
          f"{statistics.median(ratios):.2f}, range {min(ratios):.2f}-{max(ratios):.2f}"
          f"   (goal <= 1.3); CPU ratio median {statistics.median(cpu_ratios):.2f}, range "
          f"{min(cpu_ratios):.2f}-{max(cpu_ratios):.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
