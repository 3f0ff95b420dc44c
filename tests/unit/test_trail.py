"""reports.trail: a ticket's automation trail and the recent runs, read from plan reports."""

from __future__ import annotations

from pathlib import Path

from incident_ops.artefacts import LocalStore, read_json, write_json
from incident_ops.reports.trail import index_plan, recent_runs, ticket_trail


def report(root: Path, pipeline: str, run: str, generated: str, mtime: int, *,
           index: bool = True, **parts) -> str:
    """A plan report as ``write_plan_report`` stores it: the document, then its index line."""
    store = LocalStore(root)
    key = f"{pipeline}/{generated[:10]}/{run}.json"
    document = {"pipeline": pipeline, "run_id": run, "generated": generated,
                "dry_run": False, "outcomes": parts.get("outcomes", []),
                "outcome_counts": parts.get("counts", {}),
                "findings": parts.get("findings", []),
                "waiting": parts.get("waiting", {}),
                "carried_over": parts.get("carried", []),
                "undelivered": parts.get("undelivered", [])}
    write_json(store, key, document)
    if index:
        index_plan(store, key, document)
    return key


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


def test_a_line_lost_to_a_concurrent_index_write_comes_back(tmp_path):
    """Two runs writing one day's index at once: the one written last may miss the other's
    line. The view's check of the newest day and the next write both put it back."""
    report(tmp_path, "incident_closure", "r1", "2026-12-05T10:00:00+00:00", 0)
    lost = report(tmp_path, "incident_closure", "r2", "2026-12-05T10:10:00+00:00", 0,
                  index=False, outcomes=[row("41", "close", "close.auto")])
    index = read_json(LocalStore(tmp_path), "_index/incident_closure/2026-12-05.json")
    assert [r["key"] for r in index["runs"]] == ["incident_closure/2026-12-05/r1.json"]

    assert [r.run_id for r in recent_runs(tmp_path)["incident_closure"]] == ["r2", "r1"]
    assert [t.run_id for t in ticket_trail(tmp_path, "41")] == ["r2"]
    report(tmp_path, "incident_closure", "r3", "2026-12-05T10:20:00+00:00", 0)
    index = read_json(LocalStore(tmp_path), "_index/incident_closure/2026-12-05.json")
    assert lost in [r["key"] for r in index["runs"]]
    assert index["runs"][1]["tickets"] == ["41"]


def test_the_view_reads_the_indexes_not_every_report(tmp_path):
    """30 days of a pipeline running every 5 minutes: the overview reads 30 small index
    objects at most (one day here), and a trail opens only the reports naming the ticket."""
    store = LocalStore(tmp_path)
    for day in range(1, 4):
        for n in range(50):
            report(tmp_path, "incident_queue_monitor", f"m{day}-{n}",
                   f"2026-12-0{day}T{n // 6:02d}:{n % 6 * 10:02d}:00+00:00", 0,
                   outcomes=[row(str(n), "notify", "due.warn")])
    reads: list[str] = []
    real = store.read_bytes
    store.read_bytes = lambda key: reads.append(key) or real(key)  # type: ignore[method-assign]
    runs = recent_runs(store)
    assert [r.run_id for r in runs["incident_queue_monitor"]][:2] == ["m3-49", "m3-48"]
    assert reads == ["_index/incident_queue_monitor/2026-12-03.json"]
    reads.clear()
    assert [t.run_id for t in ticket_trail(store, "7")] == ["m1-7", "m2-7", "m3-7"]
    assert sorted(r for r in reads if not r.startswith("_index/")) == [
        f"incident_queue_monitor/2026-12-0{d}/m{d}-7.json" for d in (1, 2, 3)]
