"""What the automation did, read back from the plan reports (``plan_report``'s JSON files).

Every pipeline run writes ``reports/<pipeline>/<date>/<run>.json``: the plan, each action's
outcome, the findings and the waiting tickets. ``recent_runs`` lists the newest runs per
pipeline; ``ticket_trail`` collects every line that names one ticket across runs (the
ticket itself, or the copy a reopen created from it), oldest first, each stamped with when
it was done (the engine's time of its outcome; the plan's time only for what has none: a
finding, a waiting ticket, an older report). ``shown`` writes a time in the deployment's
zone, its offset labelled. Both read at most
``max_files`` newest files, so a long-lived reports folder costs a bounded read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

log = logging.getLogger(__name__)

MAX_FILES = 3000


@dataclass
class RunSummary:
    pipeline: str
    run_id: str
    generated: str
    dry_run: bool
    actions: int
    outcome_counts: dict[str, int]
    findings: int
    waiting: int
    undelivered: list[str]
    page: Path


@dataclass
class TrailLine:
    generated: str
    pipeline: str
    run_id: str
    step: str
    rule: str
    what: str  # an action kind, "finding", "waiting" or "carried over"
    outcome: str
    reason: str
    message: str = ""
    created_id: str | None = None
    undelivered: list[str] = field(default_factory=list)
    page: Path | None = None
    ticket_id: str = ""  # the ticket the line acts on (another one for a reopened copy)
    at: str = ""  # when it was done (ISO); the plan's time where the report has none


def shown(at: str | datetime | None, tz: str) -> str:
    """``at`` in the zone ``tz`` with its offset: ``2026-12-05 18:10:07 +08:00``; naive
    times are UTC; "—" for none, the text itself when it is not a time."""
    if not at:
        return "—"
    try:
        moment = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
    except ValueError:
        return str(at)
    local = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(ZoneInfo(tz))
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S} {offset[:3]}:{offset[3:]}"


def _documents(reports: Path, max_files: int = MAX_FILES
               ) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Plan report documents, newest file first."""
    if not reports.is_dir():
        return
    files = sorted(reports.glob("*/*/*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in files[:max_files]:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("plan report %s unreadable: %s", path, exc)
            continue
        if isinstance(document, dict) and "run_id" in document and "outcomes" in document:
            yield path, document


def recent_runs(reports: Path, per_pipeline: int = 8, max_files: int = MAX_FILES
                ) -> dict[str, list[RunSummary]]:
    """The newest ``per_pipeline`` runs of each pipeline, newest first."""
    runs: dict[str, list[RunSummary]] = {}
    for path, d in _documents(reports, max_files):
        listed = runs.setdefault(str(d.get("pipeline", path.parts[-3])), [])
        if len(listed) >= per_pipeline:
            continue
        listed.append(RunSummary(
            pipeline=str(d.get("pipeline")), run_id=str(d["run_id"]),
            generated=str(d.get("generated", "")), dry_run=bool(d.get("dry_run")),
            actions=len(d.get("outcomes") or []),
            outcome_counts=dict(d.get("outcome_counts") or {}),
            findings=len(d.get("findings") or []), waiting=len(d.get("waiting") or {}),
            undelivered=list(d.get("undelivered") or []), page=path.with_suffix(".html")))
    return dict(sorted(runs.items()))


def ticket_trail(reports: Path, ticket_id: str, max_files: int = MAX_FILES) -> list[TrailLine]:
    """Every line of the plan reports about ``ticket_id``, oldest first."""
    lines: list[TrailLine] = []
    for path, d in _documents(reports, max_files):
        run: dict[str, Any] = {"generated": str(d.get("generated", "")),
                               "pipeline": str(d.get("pipeline")), "run_id": str(d["run_id"]),
                               "page": path.with_suffix(".html")}
        for row in d.get("outcomes") or []:
            if str(row.get("ticket_id")) == ticket_id or \
                    str(row.get("created_id") or "") == ticket_id:
                lines.append(TrailLine(
                    **run, step=str(row.get("step", "")), rule=str(row.get("rule", "")),
                    what=str(row.get("kind", "")), outcome=str(row.get("outcome", "")),
                    reason=str(row.get("reason", "")), message=str(row.get("message") or ""),
                    created_id=row.get("created_id"), ticket_id=str(row.get("ticket_id")),
                    undelivered=list(row.get("undelivered") or []),
                    at=str(row.get("at") or run["generated"])))
        for row in d.get("carried_over") or []:
            if str(row.get("ticket_id")) == ticket_id:
                lines.append(TrailLine(
                    **run, step=str(row.get("step", "")), rule=str(row.get("rule", "")),
                    what="carried over", outcome=str(row.get("outcome", "")),
                    reason="finished what an earlier attempt owed",
                    message=str(row.get("message") or ""), created_id=row.get("created_id"),
                    ticket_id=ticket_id, undelivered=list(row.get("undelivered") or []),
                    at=str(row.get("at") or run["generated"])))
        for finding in d.get("findings") or []:
            if str(finding.get("ticket_id")) == ticket_id:
                lines.append(TrailLine(
                    **run, step="", rule=str(finding.get("field", "")), what="finding",
                    outcome=str(finding.get("severity", "")),
                    reason=str(finding.get("message", "")), at=run["generated"]))
        waiting = (d.get("waiting") or {}).get(ticket_id)
        if waiting:
            lines.append(TrailLine(**run, step="", rule="", what="waiting", outcome="waiting",
                                   reason=str(waiting), at=run["generated"]))
    lines.sort(key=lambda line: _instant(line.at))
    return lines


def _instant(at: str) -> datetime:
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
