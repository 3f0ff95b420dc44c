"""What the automation did, read back from the plan reports (``plan_report``'s JSON files).

Every pipeline run writes ``<pipeline>/<date>/<run>.json`` to the artefact store: the plan,
each action's outcome, the findings and the waiting tickets; and adds a summary of it to the
day's index ``_index/<pipeline>/<date>.json`` (``index_plan``): its counts and the tickets it
names. The view reads the indexes, newest day first, and opens a report only for a ticket's
trail, only those that name the ticket: a request costs a few small reads, not a listing
of thousands of objects (which a bucket makes slow). ``recent_runs`` lists the newest runs per
pipeline; ``ticket_trail`` collects every line that names one ticket across runs (the
ticket itself, or the copy a reopen created from it), oldest first, each stamped with when
it was done (the engine's time of its outcome; the plan's time only for what has none: a
finding, a waiting ticket, an older report). ``shown`` writes a time in the deployment's
zone, its offset labelled. Both look back at most ``max_days`` days of each pipeline and
open at most ``max_files`` reports.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from incident_ops.artefacts import ArtefactStore, as_store, join, read_json, write_json

log = logging.getLogger(__name__)

MAX_FILES = 3000
MAX_DAYS = 31
INDEX = "_index"


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
    page: str  # the plan page's key in the store


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
    page: str | None = None
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


def _summary(key: str, d: dict[str, Any]) -> dict[str, Any]:
    """A plan report's line in its day's index: what the overview shows, and every ticket
    it names (for a ticket's trail)."""
    tickets = {str(r.get("ticket_id")) for r in d.get("outcomes") or []}
    tickets |= {str(r.get("created_id")) for r in d.get("outcomes") or [] if r.get("created_id")}
    tickets |= {str(r.get("ticket_id")) for r in d.get("carried_over") or []}
    tickets |= {str(f.get("ticket_id")) for f in d.get("findings") or []}
    tickets |= {str(t) for t in (d.get("waiting") or {})}
    return {"key": key, "pipeline": str(d.get("pipeline") or key.split("/")[0]),
            "run_id": str(d["run_id"]), "generated": str(d.get("generated", "")),
            "dry_run": bool(d.get("dry_run")), "actions": len(d.get("outcomes") or []),
            "outcome_counts": dict(d.get("outcome_counts") or {}),
            "findings": len(d.get("findings") or []), "waiting": len(d.get("waiting") or {}),
            "undelivered": list(d.get("undelivered") or []), "tickets": sorted(tickets)}


def _plan_document(store: ArtefactStore, key: str) -> dict[str, Any] | None:
    try:
        document = read_json(store, key)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("plan report %s unreadable: %s", store.url(key), exc)
        return None
    if isinstance(document, dict) and "run_id" in document and "outcomes" in document:
        return document
    return None


def _index(store: ArtefactStore, pipeline: str, day: str) -> dict[str, dict[str, Any]]:
    try:
        runs = read_json(store, join(INDEX, pipeline, f"{day}.json")).get("runs") or []
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, AttributeError) as exc:
        log.warning("plan index %s/%s unreadable (%s); it is rebuilt by the next report",
                    pipeline, day, exc)
        return {}
    return {str(r["key"]): r for r in runs if isinstance(r, dict) and "key" in r}


def _missing(store: ArtefactStore, pipeline: str, day: str,
             entries: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The day's reports its index does not name (one listing; only those are read)."""
    found: dict[str, dict[str, Any]] = {}
    for key in store.keys(join(pipeline, day)):
        if key.endswith(".json") and key not in entries:
            document = _plan_document(store, key)
            if document is not None:
                found[key] = _summary(key, document)
    return found


def index_plan(store: ArtefactStore, key: str, document: dict[str, Any]) -> None:
    """Add the report at ``key`` (``<pipeline>/<day>/<run>.json``) to its day's index.

    Two runs of a pipeline may write the same day's index at once and one line be lost; each
    write also adds the day's reports the index misses (one listing), and the view checks
    the newest day the same way, so a lost line comes back."""
    pipeline, day = key.split("/")[:2]
    entries = _index(store, pipeline, day)
    entries[key] = _summary(key, document)
    entries.update(_missing(store, pipeline, day, entries))
    runs = sorted(entries.values(), key=lambda r: (_instant(r["generated"]), r["key"]))
    write_json(store, join(INDEX, pipeline, f"{day}.json"), {"runs": runs}, indent=None)


def _days(store: ArtefactStore, max_days: int) -> Iterator[tuple[str, list[str]]]:
    """Each indexed pipeline with its newest ``max_days`` days, newest first."""
    for pipeline in store.children(INDEX):
        days = [d.removesuffix(".json") for d in store.children(join(INDEX, pipeline))
                if d.endswith(".json")]
        yield pipeline, sorted(days, reverse=True)[:max_days]


def _entries(store: ArtefactStore, pipeline: str, days: list[str]
             ) -> Iterator[dict[str, Any]]:
    """The pipeline's index lines, newest first (the newest day checked for lost lines)."""
    for n, day in enumerate(days):
        entries = _index(store, pipeline, day)
        if n == 0:
            entries.update(_missing(store, pipeline, day, entries))
        yield from sorted(entries.values(), key=lambda r: (_instant(r["generated"]), r["key"]),
                          reverse=True)


def recent_runs(reports: ArtefactStore | Path, per_pipeline: int = 8,
                max_days: int = MAX_DAYS) -> dict[str, list[RunSummary]]:
    """The newest ``per_pipeline`` runs of each pipeline, newest first."""
    store = as_store(reports)
    runs: dict[str, list[RunSummary]] = {}
    for pipeline, days in _days(store, max_days):
        listed: list[RunSummary] = []
        for e in _entries(store, pipeline, days):
            if len(listed) >= per_pipeline:
                break
            listed.append(RunSummary(
                pipeline=e["pipeline"], run_id=e["run_id"], generated=e["generated"],
                dry_run=e["dry_run"], actions=e["actions"], outcome_counts=e["outcome_counts"],
                findings=e["findings"], waiting=e["waiting"], undelivered=e["undelivered"],
                page=e["key"].removesuffix(".json") + ".html"))
        if listed:
            runs.setdefault(listed[0].pipeline, []).extend(listed)
    return dict(sorted(runs.items()))


def ticket_trail(reports: ArtefactStore | Path, ticket_id: str, max_files: int = MAX_FILES,
                 max_days: int = MAX_DAYS) -> list[TrailLine]:
    """Every line of the plan reports about ``ticket_id``, oldest first (only the reports
    whose index line names the ticket are opened)."""
    store = as_store(reports)
    lines: list[TrailLine] = []
    opened = 0
    for pipeline, days in _days(store, max_days):
        for entry in _entries(store, pipeline, days):
            if ticket_id not in entry.get("tickets", ()) or opened >= max_files:
                continue
            opened += 1
            d = _plan_document(store, entry["key"])
            if d is not None:
                lines += _lines(entry["key"], d, ticket_id)
    lines.sort(key=lambda line: _instant(line.at))
    return lines


def _lines(key: str, d: dict[str, Any], ticket_id: str) -> list[TrailLine]:
    lines: list[TrailLine] = []
    run: dict[str, Any] = {"generated": str(d.get("generated", "")),
                           "pipeline": str(d.get("pipeline")), "run_id": str(d["run_id"]),
                           "page": key.removesuffix(".json") + ".html"}
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
    return lines


def _instant(at: str) -> datetime:
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
