"""The artefact store is the one way to what pipelines write for later (issue 27): no code
outside the store layer treats the reports folder as a local path, and the local store keeps
its promises (whole objects, keys that cannot leave the base)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from incident_ops.artefacts import BadKey, LocalStore, read_json, write_json

PACKAGE = Path(__file__).resolve().parents[2] / "include" / "incident_ops"
# The store layer: config defines the folder, the Airflow binding turns it into the
# default store's file:// URL. Nothing else may reach the folder.
STORE_LAYER = {"config.py", "airflow/object_store.py"}


def test_only_the_store_layer_uses_the_reports_folder():
    users = []
    for path in PACKAGE.rglob("*.py"):
        name = path.relative_to(PACKAGE).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), name)
        for node in ast.walk(tree):
            called = isinstance(node, ast.Name) and node.id == "reports_dir" or \
                isinstance(node, ast.Attribute) and node.attr == "reports_dir" or \
                isinstance(node, ast.alias) and node.name == "reports_dir"
            if called and name not in STORE_LAYER:
                users.append(f"{name}:{node.lineno}")  # type: ignore[attr-defined]
    assert users == [], "read and write artefacts through the store (artefact_store())"


def test_nothing_outside_the_store_layer_reads_the_reports_setting():
    offenders = [p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
                 if "INCIDENT_OPS_REPORTS_DIR" in p.read_text(encoding="utf-8")
                 and p.relative_to(PACKAGE).as_posix() not in STORE_LAYER]
    assert offenders == []


def test_a_local_store_round_trips_lists_and_refuses_keys_that_leave_it(tmp_path):
    store = LocalStore(tmp_path / "base")
    write_json(store, "daily/2026-12-05/kpis.json", {"n": 1})
    store.write_bytes("daily/2026-12-05/charts/a.png", b"png")
    assert read_json(store, "daily/2026-12-05/kpis.json") == {"n": 1}
    assert store.keys("daily") == ["daily/2026-12-05/charts/a.png",
                                   "daily/2026-12-05/kpis.json"]
    assert store.children("daily/2026-12-05") == ["charts", "kpis.json"]
    assert store.keys("weekly") == [] and store.children("nothing") == []
    assert store.exists("daily/2026-12-05/kpis.json") and not store.exists("daily/x")
    store.delete("daily/2026-12-05/charts/a.png")
    assert store.keys("daily/2026-12-05/charts") == []
    with pytest.raises(FileNotFoundError):
        store.read_bytes("daily/2026-12-05/missing.json")
    for bad in ("", "/etc/passwd", "../secret", "a/../../b", "a//b"):
        with pytest.raises(BadKey):
            store.read_bytes(bad)
    assert store.url("daily/x.json").startswith("file://")
