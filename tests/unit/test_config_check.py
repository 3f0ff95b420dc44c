"""Configuration mistakes fail loudly, naming file, key and line (issue 15).

Each case edits a copy of the shipped config folder the way a person would get it wrong and
checks the message a deployer reads: from the loader the DAG tasks use, and from
``python -m incident_ops check-config``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from incident_ops.config import config_dir, load_yaml
from incident_ops.config_check import check_config
from incident_ops.reference import ConfigError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    copy = tmp_path / "config"
    shutil.copytree(config_dir(), copy)
    return copy


def edit(folder: Path, name: str, old: str, new: str) -> int:
    """Replace ``old`` (present exactly once) in ``name``; the 1-based line of the change."""
    path = folder / name
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not once in {name}"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def problem(folder: Path, name: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_yaml(name, folder)
    return str(caught.value)


def test_the_shipped_folder_is_valid() -> None:
    assert check_config() == []


def test_a_quoted_false_is_refused_not_read_as_true(folder: Path) -> None:
    line = edit(folder, "closure.yaml", "close_without_answer: false",
                'close_without_answer: "false"')
    message = problem(folder, "closure.yaml")
    assert f"closure.yaml line {line}: confirmation.close_without_answer: expected true " \
           'or false, got "false" (quoted: a string); write false without quotes' in message


def test_a_misspelt_section_is_an_unknown_key_with_a_suggestion(folder: Path) -> None:
    line = edit(folder, "closure.yaml", "completeness:", "completness:")
    message = problem(folder, "closure.yaml")
    assert f"closure.yaml line {line}: completness: unknown key (did you mean " \
           "'completeness'?)" in message


def test_a_misspelt_rule_name_is_refused(folder: Path) -> None:
    line = edit(folder, "closure.yaml", "  solution: true", "  solutoin: true")
    assert f"closure.yaml line {line}: completeness.solutoin: unknown key (did you mean " \
           "'solution'?)" in problem(folder, "closure.yaml")


def test_wrong_types_name_the_key(folder: Path) -> None:
    line = edit(folder, "closure.yaml", "bulk_size: 100", "bulk_size: lots")
    assert f"closure.yaml line {line}: bulk_size: expected a whole number, got 'lots'" in \
        problem(folder, "closure.yaml")
    line = edit(folder, "sla.yaml", 'start: "09:00"', 'start: "9 am"')
    assert f"sla.yaml line {line}: calendar.start: " in problem(folder, "sla.yaml")
    line = edit(folder, "reports.yaml", "language: zh", "language: fr")
    assert f"reports.yaml line {line}: language: 'fr' is not one of zh, en" in \
        problem(folder, "reports.yaml")


def test_dead_keys_are_gone_and_refused_if_written_back(folder: Path) -> None:
    """The schedules and time zones these files once held were never read: they live in
    the environment ($INCIDENT_OPS_*_SCHEDULE, $INCIDENT_OPS_TIMEZONE)."""
    path = folder / "closure.yaml"
    path.write_text(path.read_text(encoding="utf-8") + 'schedule: "*/5 * * * *"\n',
                    encoding="utf-8")
    assert ": schedule: unknown key" in problem(folder, "closure.yaml")
    path = folder / "sla.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "timezone: Asia/Urumqi\n",
                    encoding="utf-8")
    assert ": timezone: unknown key" in problem(folder, "sla.yaml")


def test_vocabulary_and_contacts_are_checked_too(folder: Path) -> None:
    line = edit(folder, "vocabulary.yaml", "needs_ci: true, fault: true",
                "needs_ci: true, fualt: true")
    assert f"vocabulary.yaml line {line}: categories.fault.fualt: unknown key" in \
        problem(folder, "vocabulary.yaml")


def test_check_config_lists_every_problem_and_exits_1(folder: Path) -> None:
    edit(folder, "closure.yaml", "completeness:", "completness:")
    edit(folder, "sla.yaml", "warn_days_ahead: 90", 'warn_days_ahead: "90"')
    result = subprocess.run([sys.executable, "-m", "incident_ops", "check-config",
                             str(folder)], capture_output=True, text=True, cwd=REPO,
                            env={"PYTHONPATH": str(REPO / "include"), "PATH": "/usr/bin"})
    assert result.returncode == 1, result.stdout
    assert "completness: unknown key" in result.stderr
    assert "calendar.warn_days_ahead: expected a whole number" in result.stderr
    ok = subprocess.run([sys.executable, "-m", "incident_ops", "check-config"],
                        capture_output=True, text=True, cwd=REPO,
                        env={"PYTHONPATH": str(REPO / "include"), "PATH": "/usr/bin"})
    assert ok.returncode == 0 and "7 contingency plan(s)" in ok.stdout, ok.stderr


def test_a_bad_time_zone_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from incident_ops.config import timezone

    monkeypatch.setenv("INCIDENT_OPS_TIMEZONE", "Asia/Shangai")
    with pytest.raises(ConfigError, match=r"\$INCIDENT_OPS_TIMEZONE='Asia/Shangai' is not"):
        timezone()
