"""docs/desk-events.md shows the scrip a production RT installs: the same code provisioning
installs on the embedded desk, never an older copy."""

from __future__ import annotations

from pathlib import Path

from incident_ops.embedded_desk.rtconfig import SCRIPS, build_schema, events_scrip

DOC = Path(__file__).resolve().parents[2] / "docs" / "desk-events.md"


def test_the_documented_scrip_is_the_one_provisioning_installs():
    doc = DOC.read_text(encoding="utf-8")
    for part in sorted(SCRIPS.glob("*.pl")):
        assert part.read_text(encoding="utf-8").rstrip() in doc, part.name


def test_provisioning_installs_the_scrip_on_the_incidents_queue_at_the_batch_stage():
    (scrip,) = build_schema().initialdata["Scrips"]
    assert scrip == events_scrip()
    assert (scrip["Queue"], scrip["Stage"]) == ("Incidents", "TransactionBatch")
    assert "First Line Cannot Handle" in scrip["CustomIsApplicableCode"]
