"""The embedded desk against the real Request Tracker 5: provisioning, start/stop, seeding.

These tests run their own desk (a private workdir and a free port), not the session's
``embedded_desk``, because they stop it, occupy ports and seed tickets that other tests'
searches must not see. The generator tests at the end are pure and need no RT.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from incident_ops.desk.rt import schema
from incident_ops.embedded_desk import EmbeddedDesk, EmbeddedDeskError
from incident_ops.embedded_desk.rt_server import _group_pids
from incident_ops.embedded_desk.rtconfig import load_yaml
from incident_ops.embedded_desk.seed_data import generate
from tests.support import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)

needs_rt = pytest.mark.skipif(not EmbeddedDesk.rt_installed(),
                              reason="Request Tracker 5 is not installed (run `install`)")


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDesk]:
    if not EmbeddedDesk.rt_installed():
        pytest.skip("Request Tracker 5 is not installed")
    desk = EmbeddedDesk(tmp_path_factory.mktemp("desk"), port=free_port(), workers=2)
    desk.start(stop_with_parent=True)
    try:
        yield desk
    finally:
        desk.stop()


def rest(desk: EmbeddedDesk, method: str, path: str, **kwargs: object) -> requests.Response:
    resp = requests.request(method, desk.rest_url + path, auth=desk.auth, timeout=30,
                            **kwargs)  # type: ignore[arg-type]
    resp.raise_for_status()
    return resp


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "include"), **(env or {}))
    return subprocess.run([sys.executable, "-m", "incident_ops.embedded_desk", *args],
                          capture_output=True, text=True, env=full_env, timeout=120,
                          check=False)


# ------------------------------------------------------------------ start / stop
@pytest.mark.integration
@needs_rt
def test_start_twice_is_harmless(desk: EmbeddedDesk) -> None:
    pid = desk.status().pid
    assert desk.start() is False  # same object
    again = EmbeddedDesk(desk.workdir, port=desk.port)  # as another process would see it
    assert again.is_running() and again.start() is False
    assert desk.status().pid == pid
    result = _cli("--workdir", str(desk.workdir), "start", "--port", str(desk.port))
    assert result.returncode == 0, result.stderr
    assert "already running" in result.stdout
    assert desk.provision() is False  # provisioned workdir: no-op


@pytest.mark.integration
@needs_rt
def test_port_in_use_is_refused_with_the_port_named(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(EmbeddedDeskError, match=f"port {port}"):
            EmbeddedDesk(tmp_path / "w", port=port).start()
        result = _cli("--workdir", str(tmp_path / "w"), "start", "--port", str(port))
    assert result.returncode != 0
    assert f"port {port}" in result.stderr
    assert not (tmp_path / "w" / "rt-server.pid").exists()


@pytest.mark.integration
@needs_rt
def test_stop_ends_the_whole_process_group(tmp_path: Path) -> None:
    desk = EmbeddedDesk(tmp_path / "w", port=free_port(), workers=2)
    desk.start()
    pgid = desk.status().pid
    assert pgid is not None and len(_group_pids(pgid)) >= 2  # master and workers
    assert desk.stop() is True
    assert _group_pids(pgid) == []
    assert not desk.pid_file.exists()
    assert desk.stop() is False  # harmless when not running
    assert not desk.is_ready(timeout=1)


@pytest.mark.integration
@needs_rt
def test_stop_with_parent_leaves_no_desk_behind_a_killed_process(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from incident_ops.embedded_desk import EmbeddedDesk\n"
        f"d = EmbeddedDesk({str(tmp_path / 'w')!r}, port={free_port()}, workers=2)\n"
        "d.start(stop_with_parent=True)\n"
        "print(d.status().pid, flush=True)\n"
        "sys.stdin.read()\n"  # park until killed
    )
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "include"))
    parent = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert parent.stdout is not None
        pgid = int(parent.stdout.readline())
        assert _group_pids(pgid)
    finally:
        parent.kill()
        parent.wait(timeout=10)
    deadline = time.monotonic() + 15
    while _group_pids(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _group_pids(pgid) == []


# --------------------------------------------------------------------- schema
@pytest.mark.integration
@needs_rt
def test_queues_and_custom_fields_are_provisioned(desk: EmbeddedDesk) -> None:
    queues = {q["Name"]: q for q in rest(desk, "GET", "/queues/all",
                                        params={"fields": "Name,Lifecycle"}).json()["items"]}
    assert set(schema.ALL_QUEUES) <= set(queues)
    assert queues[schema.INCIDENTS]["Lifecycle"] == schema.LIFECYCLE

    vocabulary = load_yaml("vocabulary.yaml")
    found = {c["Name"]: c for c in rest(
        desk, "POST", "/customfields", params={"per_page": 100, "fields": "Name,Type,MaxValues"},
        json=[{"field": "LookupType", "value": "RT::Queue-RT::Ticket"}]).json()["items"]}
    for cf in schema.CUSTOM_FIELDS:
        assert found[cf.name]["Type"] == cf.type, cf.name
        assert int(found[cf.name]["MaxValues"]) == (0 if cf.multiple else 1), cf.name
        if cf.type == "Select":
            detail = rest(desk, "GET", f"/customfield/{found[cf.name]['id']}").json()
            expected = list(vocabulary[cf.vocabulary]) if cf.vocabulary else list(cf.values)
            assert detail["Values"] == expected, cf.name
    for queue in schema.ALL_QUEUES:
        applied = rest(desk, "GET", f"/queue/{queues[queue]['id']}/customfields",
                       params={"per_page": 100, "fields": "Name"}).json()["items"]
        expected_names = {cf.name for cf in schema.CUSTOM_FIELDS if queue in cf.queues}
        assert {c["Name"] for c in applied} == expected_names, queue


@pytest.mark.integration
@needs_rt
def test_lifecycle_refuses_leaving_closed(desk: EmbeddedDesk) -> None:
    staff = ("zhang.wei", "password")
    created = requests.post(desk.rest_url + "/ticket", auth=staff, timeout=30, json={
        "Queue": schema.INCIDENTS, "Subject": "生命周期测试", "Content": "test",
        "Status": "assigned-l1", "Owner": "zhang.wei",
        "CustomFields": {"Source": "phone", "Handler Tier": "l1",
                         "Escalation": ["a", "b"]}})
    assert created.status_code == 201, created.text
    url = f"{desk.rest_url}/ticket/{created.json()['id']}"
    for status in ("in-progress", "resolved", "closed"):
        messages = requests.put(url, auth=staff, json={"Status": status}, timeout=30).json()
        assert any(status in m for m in messages), messages
    refused = requests.put(url, auth=staff, json={"Status": "resolved"}, timeout=30)
    assert refused.status_code == 200  # RT's way: the refusal is in the messages
    assert "can't change status" in " ".join(refused.json())
    ticket = requests.get(url, auth=staff, timeout=30).json()
    assert ticket["Status"] == "closed" and ticket["Owner"]["id"] == "zhang.wei"
    cfs = {c["name"]: c["values"] for c in ticket["CustomFields"]}
    assert cfs["Escalation"] == ["a", "b"] and cfs["Handler Tier"] == ["l1"]
    bad = requests.put(url, auth=("root", "password"), timeout=30,
                       json={"CustomFields": {"Source": "not-a-source"}}).json()
    assert "Invalid value" in " ".join(bad)


# ---------------------------------------------------------------------- seed
@pytest.mark.integration
@needs_rt
def test_seed_loads_history_links_and_past_dates_once(desk: EmbeddedDesk) -> None:
    before = desk.ticket_count() or 0
    result = desk.seed(count=60, seed=7, now=NOW)
    assert result["status"] == "seeded" and result["warnings"] == 0
    assert desk.ticket_count() == before + 60
    assert desk.seed(count=60, seed=7, now=NOW)["status"] == "already-seeded"
    assert desk.ticket_count() == before + 60

    records = generate(60, 7, NOW)
    ids = {row["key"]: row["id"]
           for row in map(json.loads, Path(result["ids_file"]).read_text().splitlines())}
    closed = next(r for r in records if r.status == "closed" and r.queue == schema.INCIDENTS)
    ticket = rest(desk, "GET", f"/ticket/{ids[closed.key]}").json()
    assert ticket["Status"] == "closed" and ticket["Owner"]["id"] == closed.owner
    assert ticket["Created"] == closed.created.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ticket["Resolved"] == closed.updated.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert int(ticket["Priority"]) == load_yaml("vocabulary.yaml")["priorities"][
        closed.priority]["rank"]
    history = rest(desk, "GET", f"/ticket/{ids[closed.key]}/history",
                   params={"per_page": 100, "fields": "Type,Created"}).json()["items"]
    assert history[0]["Type"] == "Create"
    assert all(h["Created"] < "2026-06-01" for h in history)  # the simulated past

    # RT's own consistency check (role groups, links, custom-field values, transactions).
    validator = subprocess.run(["/usr/sbin/rt-validator-5", "--check"], env=desk.rt_env(),
                               capture_output=True, text=True, timeout=120, check=False)
    assert validator.returncode == 0, (validator.stdout + validator.stderr)[-2000:]

    duplicate = next((r for r in records if r.member_of), None)
    if duplicate is not None:
        found = rest(desk, "GET", "/tickets",
                     params={"query": f"MemberOf = {ids[duplicate.member_of]}"}).json()
        assert str(ids[duplicate.key]) in {item["id"] for item in found["items"]}


# ------------------------------------------------------------ generator (pure)
def test_generator_is_deterministic_and_uses_the_vocabulary() -> None:
    vocabulary = load_yaml("vocabulary.yaml")
    ranks = {k: v["rank"] for k, v in vocabulary["priorities"].items()}
    first = [t.to_json(ranks) for t in generate(400, 3, NOW)]
    assert first == [t.to_json(ranks) for t in generate(400, 3, NOW)]
    assert first != [t.to_json(ranks) for t in generate(400, 4, NOW)]

    tickets = generate(400, 3, NOW)
    incidents = [t for t in tickets if t.queue == schema.INCIDENTS]
    assert {t.status for t in incidents} == set(vocabulary["statuses"])
    for t in tickets:
        fields = t.final_fields()
        assert set(fields) <= set(schema.BY_NAME)
        for name, value in fields.items():
            cf = schema.BY_NAME[name]
            if cf.vocabulary:
                assert value in vocabulary[cf.vocabulary], (t.key, name, value)
        assert t.created <= t.updated < NOW
        if t.queue == schema.INCIDENTS and t.owner:
            assert fields.get("Handler Tier") in ("l1", "l2", None)
    assert any(t.member_of for t in tickets)
    assert any(t.status in ("new", "assigned-l1", "assigned-l2", "in-progress")
               and (NOW - t.created).days >= 3 for t in incidents)  # overdue
    assert any(t.status == "resolved" and "Close Code" not in t.final_fields()
               for t in incidents)  # incomplete resolutions
    assert any(t.fields.get("Dispatched By Help Desk") == "yes" and t.requestor
               for t in incidents)
