"""A plan and its outcomes as an artifact: JSON for machines, an HTML page for people.

Written to the artefact store under ``<pipeline>/<date>/`` with the run id in the name, so
re-running a run rewrites its own page and never mixes with another run's; each report also
goes into its day's index (``reports.trail.index_plan``), which the Incident ops view reads
instead of every report.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from incident_ops.artefacts import ArtefactStore, as_store, join, write_json
from incident_ops.notify.compose import environment
from incident_ops.policy.plan import Plan
from incident_ops.reports.outcome_words import legend, words
from incident_ops.reports.trail import index_plan

TITLES = {
    "incident_closure": "事件关闭计划 / Incident closure plan",
    "urgent_incidents": "紧急事件通知 / Urgent incident notifications",
    "incident_queue_monitor": "事件队列监控 / Queue monitoring and escalation",
}


class ReportedOutcome(Protocol):
    """What the report reads of the engine's outcome of one action (``ActionOutcome``): the
    report needs only these, so reports do not import the engine."""

    key: str
    outcome: str
    message: str
    created_id: str | None
    undelivered: list[str]
    at: str | None  # when the engine recorded it (ISO, UTC)

    def to_dict(self) -> dict[str, Any]: ...


def safe_name(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)[:120]


def write_plan_report(plan: Plan, outcomes: Sequence[ReportedOutcome] | None,
                      directory: ArtefactStore | Path,
                      *, now: datetime, dry_run: bool, desk_url: str | None = None,
                      extra: dict[str, Any] | None = None,
                      replayed: Sequence[ReportedOutcome] = (),
                      undelivered: Sequence[str] = (), stem_suffix: str = ""
                      ) -> dict[str, str]:
    """Write ``<run>.json`` and ``<run>.html`` to the store (``directory``: a store, or a
    folder); return their keys, and index the report.

    ``replayed``: what this apply finished of earlier attempts' and runs' debts;
    ``undelivered``: messages still owed after it (they go out with the next run).
    """
    by_key = {o.key: o for o in outcomes or ()}
    rows = []
    for action in plan.actions:
        outcome = by_key.get(action.key)
        rows.append({
            "ticket_id": action.ticket_id, "kind": action.kind, "step": action.step,
            "rule": action.rule, "reason": action.reason, "key": action.key,
            "outcome": outcome.outcome if outcome else "planned",
            "message": outcome.message if outcome else "",
            "created_id": outcome.created_id if outcome else None,
            "undelivered": list(outcome.undelivered) if outcome else [],
            "at": outcome.at if outcome else None,
        })
    carried = [o.to_dict() for o in replayed]
    counts = dict(Counter(r["outcome"] for r in rows))
    store = as_store(directory)
    stem = join(plan.pipeline, now.strftime("%Y-%m-%d"), safe_name(plan.run_id) + stem_suffix)
    document = {**plan.to_dict(), "dry_run": dry_run, "generated": now.isoformat(),
                "outcomes": rows, "outcome_counts": counts, "carried_over": carried,
                "undelivered": list(undelivered), **(extra or {})}
    html = environment().get_template("reports/plan.html.j2").render(
        plan=plan, rows=rows, summary=plan.by_kind(), outcome_counts=counts, dry_run=dry_run,
        carried=carried, undelivered=list(undelivered), words=words,
        legend=legend([str(o) for o in counts] + [str(c["outcome"]) for c in carried]),
        generated=now.strftime("%Y-%m-%d %H:%M UTC"), desk_url=desk_url,
        title=TITLES.get(plan.pipeline, plan.pipeline))
    store.write_bytes(f"{stem}.html", html.encode("utf-8"))
    write_json(store, f"{stem}.json", document)  # after the page: the index names both
    index_plan(store, f"{stem}.json", document)
    return {"json": f"{stem}.json", "html": f"{stem}.html"}
