"""Benchmark: manager-report KPIs over a million synthetic tickets.

    PYTHONPATH=include .venv/bin/python bench/bench_kpis.py [--count 1000000] [--kind monthly]

Tickets are generated lazily (numpy draws the columns, a generator builds one ``Ticket`` at
a time) and stream straight into ``frame_from_tickets``, as they stream from the desk in the
fetch task, so the input list never sits in memory. Printed: generating the tickets alone
(the cost of the frozen ``Ticket`` dataclass, not of the report), generating and building
the frame in one stream, computing the KPIs, and peak RSS. Goal: the whole stream plus the
KPIs under 20 s, peak under 4 GB.
Results are recorded in the README, never asserted as timings in tests.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))

from incident_ops.config import load_vocabulary, load_yaml  # noqa: E402
from incident_ops.model import Ticket  # noqa: E402
from incident_ops.policy.escalation import SlaPolicy  # noqa: E402
from incident_ops.reports.frame import frame_from_tickets  # noqa: E402
from incident_ops.reports.kpis import KpiSettings, compute_kpis  # noqa: E402
from incident_ops.reports.periods import Period, period_containing  # noqa: E402

HANDLERS = ["zhang.wei", "li.na", "wang.fang", "liu.yang", "chen.jing", "zhao.lei", None]
VENDORS = ["亚信", "华为", "思特奇", "中兴", "浪潮", "东软", None]
STAMPS = ["100.7.1 close.auto-source · run scheduled__x", "100.7.1 close.confirmed · run x",
          "100.7.4 close.handled-by-support · run x", "100.7.1 close.duplicate-cascade · run x",
          "100.6 completeness · run x", None]


def synthetic_tickets(n: int, start: datetime, end: datetime, seed: int = 7) -> Iterator[Ticket]:
    """``n`` plausible incident tickets created in ``[start, end)``, deterministic per seed."""
    rng = np.random.default_rng(seed)
    span = int((end - start).total_seconds())
    created_s = np.sort(rng.integers(0, span, n))
    ttr_s = rng.exponential(18 * 3600, n).astype(np.int64) + 300
    response_s = rng.exponential(3600, n).astype(np.int64) + 30
    unanswered = rng.random(n) < 0.05

    def pick(values: list, p: list[float] | None = None) -> list:
        return [values[i] for i in rng.choice(len(values), n, p=p)]

    status = pick(["closed", "resolved", "new", "assigned-l1", "assigned-l2", "in-progress"],
                  [.6, .2, .05, .06, .05, .04])
    priority = pick(["urgent", "high", "medium", "low"], [.02, .18, .5, .3])
    impact = pick(["major", "high", "medium", "low", None], [.005, .1, .4, .4, .095])
    source = pick(["monitoring", "auto-transfer", "phone", "email", "portal", "helpdesk"])
    category = pick(["alarm", "fault", "request", "consult", "data-fix", None],
                    [.35, .25, .2, .1, .08, .02])
    system = pick(["crm", "billing", "boss", "sms-gw", "portal", "oss", "dw", "legacy"])
    handler = pick(HANDLERS)
    vendor = pick(VENDORS)
    close_code = pick(["solved", "workaround", "self-healed", "no-fault", "unsuccessful"],
                      [.6, .15, .1, .1, .05])
    stamp = pick(STAMPS)
    ci = [f"CI-{i:04d}" for i in rng.integers(0, 3000, n)]
    dup = rng.random(n) < 0.1
    dup_of = [str(max(1, i - int(k) - 1)) if d else None
              for i, (d, k) in enumerate(zip(dup, rng.integers(0, 50, n), strict=True))]
    esc = rng.integers(0, 8, n)
    rungs = ("at-risk", "breached", "convene", "management")
    bounce = rng.random(n) < 0.04
    confirmed = rng.random(n) < 0.3
    created_l, ttr_l, response_l = created_s.tolist(), ttr_s.tolist(), response_s.tolist()
    for i in range(n):
        created = start + timedelta(seconds=created_l[i])
        done = status[i] in ("resolved", "closed")
        finished = created + timedelta(seconds=ttr_l[i]) if done else None
        responded = None if unanswered[i] and not done else \
            created + timedelta(seconds=min(response_l[i], ttr_l[i]))
        yield Ticket(
            id=str(i + 1), subject=f"合成事件 {i + 1}", status=status[i], priority=priority[i],
            created=created, updated=finished or created, impact=impact[i], source=source[i],
            category=category[i], system=system[i], handler=handler[i],
            close_code=close_code[i] if status[i] == "closed" else None,
            faulty_vendor=vendor[i], config_item=ci[i], duplicate_of=dup_of[i],
            confirmation="confirmed" if confirmed[i] else None,
            completed_at=finished, resolved_at=finished, responded_at=responded,
            closed_at=finished + timedelta(hours=2) if status[i] == "closed" and finished
            else None,
            escalation=rungs[:esc[i]] if esc[i] <= 4 else (),
            automation_keys=(f"bounce:{i:x}",) if bounce[i] else (),
            automation=stamp[i])


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--kind", default="monthly", choices=["daily", "weekly", "monthly"])
    args = parser.parse_args()

    period: Period = period_containing(args.kind, date(2026, 10, 15))
    window_start, window_end = period.previous().start_utc, period.end_utc
    settings = KpiSettings.from_config(load_vocabulary(),
                                       SlaPolicy.from_dict(load_yaml("sla.yaml")),
                                       tz=period.tz)
    print(f"{args.count:,} tickets created {window_start:%Y-%m-%d} .. {window_end:%Y-%m-%d} "
          f"UTC; report: {period.kind} {period.label} (+ previous period)")

    t0 = time.perf_counter()
    for _ in synthetic_tickets(args.count, window_start, window_end):
        pass
    generate = time.perf_counter() - t0

    t0 = time.perf_counter()
    frame = frame_from_tickets(synthetic_tickets(args.count, window_start, window_end))
    streamed = time.perf_counter() - t0

    t0 = time.perf_counter()
    kpis = compute_kpis(frame, period, settings)
    compute = time.perf_counter() - t0

    h = kpis.headline
    print(f"generate tickets alone (input; frozen dataclasses):   {generate:6.2f} s")
    print(f"generate + build frame, streamed:                     {streamed:6.2f} s")
    print(f"compute KPIs (period + previous period):              {compute:6.2f} s")
    print(f"total, tickets generated included:                    {streamed + compute:6.2f} s"
          f"  (goal < 20 s)")
    print(f"peak RSS:                                             {peak_rss_mb():6.0f} MB"
          f"  (goal < 4096 MB)")
    print(f"frame memory: {frame.memory_usage(deep=True).sum() / 2**20:.0f} MB; "
          f"created {h['created']:,}, resolved {h['resolved']:,}, closed {h['closed']:,}, "
          f"SLA {h['sla_pct']}%, response {h['response_pct']}%, "
          f"reopen rate {h['reopen_rate_pct']}%, bounce rate {h['bounce_rate_pct']}%")


if __name__ == "__main__":
    main()
