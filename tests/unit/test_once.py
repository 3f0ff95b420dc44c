"""engine.once: an effect recorded only after it happened, not done again while recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from incident_ops.engine.once import FileLedger, once


class Refused(RuntimeError):
    pass


def test_done_once_then_skipped_with_the_record_that_stands(tmp_path: Path) -> None:
    ledger = FileLedger(tmp_path / "sent.json")
    sent: list[int] = []

    def send() -> dict[str, object]:
        sent.append(1)
        return {"message_id": f"<m{len(sent)}@x>"}

    first = once(ledger, send)
    second = once(ledger, send)
    assert (first.acted, second.acted) == (True, False)
    assert sent == [1]
    assert second.record == {"message_id": "<m1@x>"} and second.history == 1


def test_a_failed_effect_leaves_no_record_so_the_retry_acts(tmp_path: Path) -> None:
    ledger = FileLedger(tmp_path / "sent.json")
    tries: list[int] = []

    def flaky() -> dict[str, object]:
        tries.append(1)
        if len(tries) == 1:
            raise Refused("451 try again later")
        return {"message_id": "<ok@x>"}

    with pytest.raises(Refused):
        once(ledger, flaky)
    assert ledger.records() == [] and not (tmp_path / "sent.json").exists()
    done = once(ledger, flaky)
    assert done.acted and ledger.records() == [{"message_id": "<ok@x>"}]


def test_again_repeats_on_purpose_and_keeps_the_history(tmp_path: Path) -> None:
    ledger = FileLedger(tmp_path / "sent.json")
    once(ledger, lambda: {"message_id": "<a@x>"})
    done = once(ledger, lambda: {"message_id": "<b@x>"}, again=True)
    assert done.acted and done.again and done.history == 2
    saved = json.loads((tmp_path / "sent.json").read_text(encoding="utf-8"))
    assert saved["first_message_id"] == "<a@x>" and saved["message_id"] == "<b@x>"
    assert [r["message_id"] for r in saved["sends"]] == ["<a@x>", "<b@x>"]


@pytest.mark.parametrize("old", ['{"message_id": "<old@x>"}', "2026-11-26T07:30:00+00:00"])
def test_a_marker_written_by_an_earlier_version_stops_a_second_send(tmp_path: Path,
                                                                     old: str) -> None:
    """The report's single-record sent.json and the snapshot's bare-timestamp .sent file."""
    (tmp_path / "m").write_text(old, encoding="utf-8")
    done = once(FileLedger(tmp_path / "m"), lambda: pytest.fail("sent again"))  # type: ignore[arg-type,return-value]
    assert not done.acted and done.history == 1
