"""reports.trail: a ticket's automation trail and the recent runs, read from plan reports."""

from __future__ import annotations

import json
import os
from pathlib import Path

from incident_ops.reports.trail import recent_runs, ticket_trail


def report(root: Path, pipeline: str, run: str, generated: str, mtime: int, **parts) -> None:
    folder = root / pipeline / generated[:10]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run}.json"
    path.write_text(json.dumps({"pipeline": pipeline, "run_id": run, "generated": generated,
                                "dry_run": False, "outcomes": parts.get("outcomes", []),
                                "outcome_counts": parts.get("counts", {}),
                                "findings": parts.get("findings", []),
                                "waiting": parts.get("waiting", {}),
                                "carried_over": parts.get("carried", []),
                                "undelivered": parts.get("undelivered", [])}),
                    encoding="utf-8")
    os.utime(path, (mtime, mtime))


def row(ticket: str, kind: str, rule: str, outcome: str = "done", **more) -> dict:
    return {"ticket_id": ticket, "kind": kind, "step": "100.7.2", "rule": rule,
            "reason": f"{rule} because", "key": f"{kind}:{ticket}", "outcome": outcome,
            "message": "", "created_id": None, "undelivered": [], **more}


def test_a_reopened_tickets_trail_spans_runs_oldest_first_and_names_its_copy(tmp_path):
    report(tmp_path, "incident_closure", "r2", "2026-12-05T10:10:00+00:00", 2000,
           outcomes=[row("41", "reopen", "confirm.rejected", created_id="77"),
                     row("9", "close", "close.auto")], counts={"done": 2})
    report(tmp_path, "incident_closure", "r1", "2026-12-05T10:00:00+00:00", 1000,
           outcomes=[row("41", "ask_confirmation", "confirm.ask")], counts={"done": 1},
           waiting={"41": "awaiting the requester's answer"})
    report(tmp_path, "incident_queue_monitor", "m1", "2026-12-05T10:05:00+00:00", 1500,
           findings=[{"ticket_id": "41", "field": "due", "message": "no due time",
                      "severity": "warning"}])
    (tmp_path / "incident_closure" / "2026-12-05" / "broken.json").write_text("{nope")

    trail = ticket_trail(tmp_path, "41")
    assert [(t.run_id, t.what, t.outcome) for t in trail] == [
        ("r1", "ask_confirmation", "done"), ("r1", "waiting", "waiting"),
        ("m1", "finding", "warning"), ("r2", "reopen", "done")]
    assert trail[-1].created_id == "77"
    copy = ticket_trail(tmp_path, "77")  # the copy's trail starts with its creation
    assert [(t.ticket_id, t.rule) for t in copy] == [("41", "confirm.rejected")]
    assert ticket_trail(tmp_path, "4") == []  # no prefix matches

    runs = recent_runs(tmp_path, per_pipeline=1)
    assert {p: [r.run_id for r in rs] for p, rs in runs.items()} == {
        "incident_closure": ["r2"], "incident_queue_monitor": ["m1"]}
    assert runs["incident_closure"][0].outcome_counts == {"done": 2}


def test_no_reports_folder_is_an_empty_view(tmp_path):
    assert ticket_trail(tmp_path / "missing", "1") == []
    assert recent_runs(tmp_path / "missing") == {}
