"""Benchmark: manager-report KPIs over a million synthetic tickets.

    PYTHONPATH=include .venv/bin/python bench/bench_kpis.py [--count 1000000] [--kind monthly]
        [--tickets]

By default the tickets are generated as columns (numpy draws, codes as categoricals, times
as datetime64), the way a columnar source hands them over, and ``frame_from_columns`` types
them. With ``--tickets`` they are generated lazily as ``Ticket`` objects and stream into
``frame_from_tickets``, as they stream from the desk in the fetch task (generating them is
timed in a pass of its own and subtracted). Both draw the same tickets from the same seed.

Printed separately: generating the input, building the frame, computing the KPIs (each as
wall-clock and CPU seconds: on a busy machine the CPU time is the steadier figure), and the
process's peak RSS. Goals (issue 30): frame < 2 s, KPIs < 1.5 s, peak RSS < 600 MB.
Results are recorded in the issue notes, never asserted as timings in tests.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))

from incident_ops.config import load_vocabulary, load_yaml  # noqa: E402
from incident_ops.model import Ticket  # noqa: E402
from incident_ops.policy.escalation import SlaPolicy  # noqa: E402
from incident_ops.reports.frame import frame_from_columns, frame_from_tickets  # noqa: E402
from incident_ops.reports.kpis import KpiSettings, compute_kpis  # noqa: E402
from incident_ops.reports.periods import Period, period_containing  # noqa: E402

HANDLERS = ["zhang.wei", "li.na", "wang.fang", "liu.yang", "chen.jing", "zhao.lei", None]
VENDORS = ["亚信", "华为", "思特奇", "中兴", "浪潮", "东软", None]
STAMPS = ["100.7.1 close.auto-source · run scheduled__x", "100.7.1 close.confirmed · run x",
          "100.7.4 close.handled-by-support · run x", "100.7.1 close.duplicate-cascade · run x",
          "100.6 completeness · run x", None]


RUNGS = ("at-risk", "breached", "convene", "management")


@dataclass(frozen=True)
class Draws:
    """The random draws behind the synthetic tickets: one per ticket and field, as codes
    into the value lists (``pick``), so the ``Ticket`` stream and the columns of the same
    seed are the same tickets."""

    n: int
    created_s: np.ndarray
    ttr_s: np.ndarray
    response_s: np.ndarray
    unanswered: np.ndarray
    picks: dict[str, tuple[list[Any], np.ndarray]]
    ci: np.ndarray
    dup: np.ndarray
    dup_back: np.ndarray
    esc: np.ndarray
    bounce: np.ndarray
    confirmed: np.ndarray


def draws(n: int, span_s: int, seed: int = 7) -> Draws:
    rng = np.random.default_rng(seed)
    created_s = np.sort(rng.integers(0, span_s, n))
    ttr_s = rng.exponential(18 * 3600, n).astype(np.int64) + 300
    response_s = rng.exponential(3600, n).astype(np.int64) + 30
    unanswered = rng.random(n) < 0.05
    picks: dict[str, tuple[list[Any], np.ndarray]] = {}
    for name, values, p in (
            ("status", ["closed", "resolved", "new", "assigned-l1", "assigned-l2",
                        "in-progress"], [.6, .2, .05, .06, .05, .04]),
            ("priority", ["urgent", "high", "medium", "low"], [.02, .18, .5, .3]),
            ("impact", ["major", "high", "medium", "low", None], [.005, .1, .4, .4, .095]),
            ("source", ["monitoring", "auto-transfer", "phone", "email", "portal", "helpdesk"],
             None),
            ("category", ["alarm", "fault", "request", "consult", "data-fix", None],
             [.35, .25, .2, .1, .08, .02]),
            ("system", ["crm", "billing", "boss", "sms-gw", "portal", "oss", "dw", "legacy"],
             None),
            ("handler", HANDLERS, None),
            ("faulty_vendor", VENDORS, None),
            ("close_code", ["solved", "workaround", "self-healed", "no-fault", "unsuccessful"],
             [.6, .15, .1, .1, .05]),
            ("automation", STAMPS, None)):
        picks[name] = (values, rng.choice(len(values), n, p=p))
    ci = rng.integers(0, 3000, n)
    dup = rng.random(n) < 0.1
    dup_back = rng.integers(0, 50, n)
    esc = rng.integers(0, 8, n)
    bounce = rng.random(n) < 0.04
    confirmed = rng.random(n) < 0.3
    return Draws(n, created_s, ttr_s, response_s, unanswered, picks, ci, dup, dup_back, esc,
                 bounce, confirmed)


def synthetic_tickets(n: int, start: datetime, end: datetime, seed: int = 7) -> Iterator[Ticket]:
    """``n`` plausible incident tickets created in ``[start, end)``, deterministic per seed."""
    d = draws(n, int((end - start).total_seconds()), seed)

    def pick(name: str) -> list[Any]:
        values, codes = d.picks[name]
        return [values[i] for i in codes]

    status, priority, impact = pick("status"), pick("priority"), pick("impact")
    source, category, system = pick("source"), pick("category"), pick("system")
    handler, vendor, close_code, stamp = (pick("handler"), pick("faulty_vendor"),
                                          pick("close_code"), pick("automation"))
    ci = [f"CI-{i:04d}" for i in d.ci]
    dup_of = [str(max(1, i - int(k) - 1)) if dp else None
              for i, (dp, k) in enumerate(zip(d.dup, d.dup_back, strict=True))]
    esc, bounce, confirmed, unanswered = d.esc, d.bounce, d.confirmed, d.unanswered
    created_l, ttr_l = d.created_s.tolist(), d.ttr_s.tolist()
    response_l = d.response_s.tolist()
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
            escalation=RUNGS[:esc[i]] if esc[i] <= 4 else (),
            automation_keys=(f"bounce:{i:x}",) if bounce[i] else (),
            automation=stamp[i])


def synthetic_columns(n: int, start: datetime, end: datetime, seed: int = 7
                      ) -> dict[str, Any]:
    """The tickets of ``synthetic_tickets`` as columns (``frame_from_columns``' input), the
    way a columnar source hands them over: codes as categoricals, times as datetime64."""
    d = draws(n, int((end - start).total_seconds()), seed)

    def coded(values: list[Any], codes: np.ndarray) -> pd.Categorical:
        """``values[codes]`` as a categorical; ``None`` in ``values`` is missing."""
        known = [v for v in values if v is not None]
        remap = np.array([known.index(v) if v is not None else -1 for v in values])
        return pd.Categorical.from_codes(remap[codes], categories=known)

    cols: dict[str, Any] = {name: coded(*d.picks[name]) for name in (
        "status", "priority", "impact", "source", "category", "system", "handler",
        "faulty_vendor")}
    status = d.picks["status"][1]
    is_closed = status == 0  # "closed"
    done = is_closed | (status == 1)  # "resolved"
    values, codes = d.picks["close_code"]
    cols["close_code"] = coded([*values, None], np.where(is_closed, codes, len(values)))
    cols["automation"] = np.array(STAMPS, dtype=object)[d.picks["automation"][1]]
    cols["config_item"] = pd.Categorical.from_codes(
        d.ci, categories=[f"CI-{k:04d}" for k in range(3000)])
    cols["confirmation"] = coded(["confirmed", None], np.where(d.confirmed, 0, 1))
    cols["escalation"] = coded([None, *("|".join(RUNGS[:k]) for k in range(1, 5))],
                               np.where(d.esc <= 4, d.esc, 0))
    cols["resolver_role"] = None
    cols["idempotency_key"] = None
    number = np.arange(1, n + 1)
    cols["id"] = [str(i) for i in range(1, n + 1)]
    cols["subject"] = [f"合成事件 {i}" for i in range(1, n + 1)]
    dup_of = np.full(n, None, dtype=object)
    dup_of[d.dup] = [str(v) for v in np.maximum(1, number - 1 - d.dup_back - 1)[d.dup]]
    cols["duplicate_of"] = dup_of
    second = np.timedelta64(1, "s")
    nat = np.datetime64("NaT", "us")
    created = np.datetime64(start.replace(tzinfo=None), "us") + d.created_s * second
    finished = np.where(done, created + d.ttr_s * second, nat)
    cols["created"] = created
    cols["resolved_at"] = cols["completed_at"] = finished
    cols["closed_at"] = np.where(is_closed, finished + np.timedelta64(2, "h"), nat)
    cols["responded_at"] = np.where(
        d.unanswered & ~done, nat,
        created + np.minimum(d.response_s, d.ttr_s) * second)
    cols["bounces"] = d.bounce.astype(np.int32)
    return cols


class Timer:
    """Wall-clock and CPU seconds of a ``with`` block."""

    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu

    def minus(self, other: Timer) -> None:
        self.wall -= other.wall
        self.cpu -= other.cpu

    def __str__(self) -> str:
        return f"{self.wall:6.2f} s (CPU {self.cpu:5.2f} s)"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--kind", default="monthly", choices=["daily", "weekly", "monthly"])
    parser.add_argument("--tickets", action="store_true",
                        help="build the frame from a stream of Ticket objects (the fetch "
                             "task's path) instead of from columns")
    args = parser.parse_args()

    period: Period = period_containing(args.kind, date(2026, 10, 15))
    window_start, window_end = period.previous().start_utc, period.end_utc
    settings = KpiSettings.from_config(load_vocabulary(),
                                       SlaPolicy.from_dict(load_yaml("sla.yaml")),
                                       tz=period.tz)
    source = "Ticket stream" if args.tickets else "columns"
    print(f"{args.count:,} tickets created {window_start:%Y-%m-%d} .. {window_end:%Y-%m-%d} "
          f"UTC; report: {period.kind} {period.label} (+ previous period); input: {source}")

    if args.tickets:
        # Tickets are made one at a time as the frame pulls them, as they stream from the
        # desk: generating them alone is timed in a pass of its own and subtracted.
        with Timer() as generate:
            for _ in synthetic_tickets(args.count, window_start, window_end):
                pass
        with Timer() as build:
            frame = frame_from_tickets(synthetic_tickets(args.count, window_start, window_end))
        build.minus(generate)
    else:
        with Timer() as generate:
            columns = synthetic_columns(args.count, window_start, window_end)
        with Timer() as build:
            frame = frame_from_columns(columns)
        del columns

    with Timer() as compute:
        kpis = compute_kpis(frame, period, settings)

    h = kpis.headline
    for label, value in ((f"generating the input ({source}):", f"{generate}"),
                         ("building the frame:", f"{build}  (goal < 2 s)"),
                         ("computing the KPIs (period + previous):", f"{compute}  (goal < 1.5 s)"),
                         ("peak RSS:", f"{peak_rss_mb():6.0f} MB  (goal < 600 MB)")):
        print(f"{label:<42}{value}")
    print(f"frame memory: {frame.memory_usage(deep=True).sum() / 2**20:.0f} MB; "
          f"created {h['created']:,}, resolved {h['resolved']:,}, closed {h['closed']:,}, "
          f"SLA {h['sla_pct']}%, response {h['response_pct']}%, "
          f"reopen rate {h['reopen_rate_pct']}%, bounce rate {h['bounce_rate_pct']}%")


if __name__ == "__main__":
    main()
