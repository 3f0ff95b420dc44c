"""The README, followed as a newcomer would: `make demo`, then its commands in a new shell.

``tests/support/demo.py`` starts the demo as ``make demo`` does, in a scratch copy of the
repository on free ports, with 160 sample tickets instead of 2,000 (the first 160 of the
same deterministic mix: the README's example ticket, 75, is among them, and so are urgent
incidents nobody was told about yet). Every ``bash`` block of the README carries a marker:
``after-demo`` blocks are run here, each in a new ``bash`` in the copy's root with none of
this session's settings, the port numbers being the only change; ``demo`` is the
``make demo`` / ``make stop`` block, run as ``scripts/demo.sh start`` (``make install``
would reinstall the shared virtual environment from the copy) and ``make stop``;
``skip (why)`` blocks are not run, for the reason given.

Then the acceptance test of on-call alerting, on the demo's real scheduler, DAG processor
and triggerer: the desk is killed; within the deadline one deadline mail reaches on-call,
none twice; each failed run is one mail. The demo runs with a 1-minute deadline for
``urgent_incidents`` and one retry two seconds apart, so the outage is seen in minutes.

Marked ``slow``: about four minutes here, most of it waiting for Airflow's own clocks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from tests.support.demo import REPO, Demo, copy_repository, poll

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.browser]

README = REPO / "README.md"
TICKETS = 160
DEADLINE_MINUTES = 1.0
ONCALL = "oncall@ops.example.cn"
MARKER = re.compile(r"<!-- readme-test: (demo|after-demo|skip \((?P<why>[^)]+)\)) -->\s*\n"
                    r"```bash\n(?P<body>.*?)```", re.S)


def readme_blocks() -> list[tuple[str, str]]:
    """(marker, command text) of every bash block, in order."""
    return [(m.group(1).split(" ")[0], m.group("body"))
            for m in MARKER.finditer(README.read_text(encoding="utf-8"))]


def test_every_bash_block_of_the_readme_is_run_here_or_says_why_not():
    text = README.read_text(encoding="utf-8")
    assert text.count("```bash") == len(readme_blocks()), \
        "a ```bash block of the README has no <!-- readme-test: ... --> marker"
    kinds = [kind for kind, _ in readme_blocks()]
    assert kinds.count("demo") == 1 and kinds.count("after-demo") >= 4


# Processes spinning on the CPU beside make demo. Alone, one; in `make test` (pytest-xdist)
# the other workers already load both cores (load 3-5 on CI's 2), and the hog only cost
# ~200 CPU-seconds of everyone's time.
HOGS = int(os.environ.get("INCIDENT_OPS_DEMO_HOGS")
           or ("0" if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1 else "1"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The demo, started and opened on a loaded machine, as a newcomer's busy laptop: run
    alone, a process spinning on the CPU from before ``make demo`` until its first closure
    run is over; in ``make test`` the other test workers are the load (the file starts
    among the first, with every worker busy). The rest of the module runs without it."""
    if shutil.which("make") is None:
        pytest.fail("make is not installed (Debian's make)")
    root = copy_repository(tmp_path_factory.mktemp("demo-repo"))
    started = Demo(root, tickets=TICKETS, settings={
        "INCIDENT_OPS_URGENT_DEADLINE_MINUTES": str(DEADLINE_MINUTES),
        "INCIDENT_OPS_RETRIES": "1", "INCIDENT_OPS_RETRY_DELAY_SECONDS": "2"})
    hogs = [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(HOGS)]
    try:
        started.start()
        print(f"\nmake demo ({TICKETS} tickets, {HOGS} CPU hog(s)) took {started.started_in:.0f} s")
        if re.search(r"first closure run: \S+__", started.output):
            finished(started, "incident_closure", first_closure_run(started), 900)
        for hog in hogs:
            hog.kill()
        yield started
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
        stopped = started.stop()
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr


def first_closure_run(demo: Demo) -> str:
    found = re.search(r"first closure run: (\S+)", demo.output)
    assert found, demo.output
    return found.group(1)


def finished(demo: Demo, dag_id: str, run_id: str, deadline_s: float = 240) -> str:
    def state() -> str | None:
        runs = {r["dag_run_id"]: r["state"] for r in demo.runs(dag_id)}
        return runs.get(run_id) if runs.get(run_id) in ("success", "failed") else None
    return poll(state, deadline_s, f"{dag_id} {run_id} to finish")


# ---------------------------------------------------------------------- make demo
def test_make_demo_prints_where_to_look_and_unpauses_what_it_shows(demo):
    out = demo.output
    for url in (demo.airflow, demo.desk, demo.mailbox + "/"):
        assert url in out, out
    assert "scripts/airflow dags list" in out
    # the sample tickets load with progress lines: done/total, rate, time left
    assert re.search(rf"seeding: {TICKETS}/{TICKETS} tickets, [\d.]+/s", out), out
    paused = {d: demo.api("GET", f"/api/v2/dags/{d}")["is_paused"] for d in (
        "incident_closure", "urgent_incidents", "incident_queue_monitor", "emergency_response",
        "incident_report_daily", "incident_queue_snapshot")}
    assert paused == {"incident_closure": False, "urgent_incidents": False,
                      "incident_queue_monitor": False, "emergency_response": False,
                      "incident_report_daily": True, "incident_queue_snapshot": True}


def test_the_first_closure_run_has_its_summary_in_the_log_and_a_plan_page_link(demo, browser):
    # (it ran beside a CPU hog: the demo fixture)
    run = first_closure_run(demo)
    assert finished(demo, "incident_closure", run) == "success"
    base = f"/api/v2/dags/incident_closure/dagRuns/{run}/taskInstances/report"
    found = demo.api("GET", f"{base}/logs/1")["content"]
    log = "\n".join(str(line.get("event", "")) for line in found if isinstance(line, dict))
    lines = [line for line in log.splitlines()
             if re.search(r"\b(close|cascade_close) +\d+ done", line)]
    assert lines, log[-3000:]  # one line per kind of action, not one long dict
    assert re.search(r"undelivered +0 message", log) and re.search(r"findings +\d", log)
    link = demo.api("GET", f"{base}/links")["extra_links"]["Plan page"]
    assert link.startswith(f"{demo.airflow}/incident-ops/plans/incident_closure/")
    # without an Airflow session the page is not served
    assert requests.get(link, timeout=30, allow_redirects=False).status_code in (302, 307, 401)
    # a person: logs in, opens the report task, Details, Plan page
    page = browser.open(link, width=1200)
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "admin")
    page.click("button:has-text('Sign in')")
    page.wait_for_url("**/incident-ops/plans/**", timeout=30_000)
    page.goto(f"{demo.airflow}/dags/incident_closure/runs/{quote(run, safe='')}/tasks/report")
    page.get_by_text("Details", exact=True).click()
    button = page.get_by_role("link", name="Plan page")
    assert button.get_attribute("href") == link
    if button.get_attribute("target") == "_blank":
        with page.context.expect_page() as opened:
            button.click()
        plan = opened.value
    else:
        button.click()
        plan = page
    plan.wait_for_url(link, timeout=30_000)
    assert plan.url == link
    assert f"incident_closure · {run}" in plan.title()
    assert "100.7" in plan.inner_text("body")


def test_the_readme_commands_work_as_printed_in_a_new_shell(demo):
    before = {r["dag_run_id"] for r in demo.runs("emergency_response")}
    outputs = []
    for kind, body in readme_blocks():
        if kind != "after-demo":
            continue
        command = (body.replace("127.0.0.1:8080", demo.airflow.removeprefix("http://"))
                   .replace("127.0.0.1:8480", demo.desk.removeprefix("http://"))
                   .replace("127.0.0.1:8026", demo.mailbox.removeprefix("http://")))
        done = demo.shell(command)
        assert done.returncode == 0, f"{command}\n--- exit {done.returncode}\n" \
                                     f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        assert "graphviz" not in done.stderr, f"{command}: warning noise\n{done.stderr[-2000:]}"
        outputs.append((body, done.stdout))
    listed = next(out for body, out in outputs if "list-runs incident_closure" in body)
    assert first_closure_run(demo) in listed
    rest = next(out for body, out in outputs if "curl -sS -X POST $AF/api/v2" in body)
    answer = json.loads(rest[rest.index("{"):])

    # The CLI block starts the emergency on #75; the REST block, its alternative, run after
    # it is refused (one emergency per incident) naming the CLI's run, as the README shows.
    new = poll(lambda: [r for r in demo.runs("emergency_response")
                        if r["dag_run_id"] not in before] or None, 60, "the emergency run")
    assert len(new) == 1, new
    assert "is already running" in answer.get("detail", ""), answer
    assert new[0]["dag_run_id"] in answer["detail"]
    for run in new:
        assert run["conf"]["ticket_id"] == "75"
        states = poll(lambda run=run: (s := demo.task_states("emergency_response",
                                                             run["dag_run_id"]))
                      .get("covered") == "awaiting_input" and s, 300,
                      f"emergency run {run['dag_run_id']} to ask 101.2")
        assert states["validate"] == states["notify_start"] == "success"
    started = poll(lambda: [m for m in demo.mail() if "【应急启动】#75 " in m["subject"]], 60,
                   "the start mail of the emergency on #75")
    assert started

    # The daily report, unpaused and triggered as the README prints it, ran to the end.
    reports = poll(lambda: [r for r in demo.runs("incident_report_daily")
                            if r["run_type"] == "manual"] or None, 60, "the daily report's run")
    assert len(reports) == 1, reports
    assert finished(demo, "incident_report_daily", reports[0]["dag_run_id"], 600) == "success"

    # The dry run of incident_closure ran and changed nothing.
    dry = poll(lambda: [r for r in demo.runs("incident_closure")
                        if (r.get("conf") or {}).get("dry_run") is True], 30, "a dry run")
    assert finished(demo, "incident_closure", dry[0]["dag_run_id"]) == "success"
    page = demo.api("GET", f"/api/v2/dags/incident_closure/dagRuns/{dry[0]['dag_run_id']}"
                            "/taskInstances/report/links")["extra_links"]["Plan page"]
    assert "dry" in requests.get(page, timeout=30, headers={
        "Authorization": f"Bearer {demo.token()}"}).text.lower()

    # The example ticket is what the README says: in the demo desk, open, CRM.
    ticket = requests.get(f"{demo.desk}/REST/2.0/ticket/75", auth=("root", "password"),
                          timeout=30).json()
    assert ticket["Status"] not in ("resolved", "closed", "rejected", "deleted"), ticket
    assert any(cf.get("name") == "System" and "crm" in cf.get("values", [])
               for cf in ticket.get("CustomFields", [])), ticket.get("CustomFields")
    # The picture commands drew into the scratch folder and left the tracked pictures alone.
    for png in ("report-email.png", "mailbox.png", "mailbox-report.png"):
        assert (demo.root / "build" / "screenshots" / png).stat().st_mtime > time.time() - 600
        assert (demo.root / "docs" / png).read_bytes() == (REPO / "docs" / png).read_bytes()


def test_a_requesters_click_in_the_mailbox_closes_the_ticket_at_the_next_run(demo, browser):
    """README, "The requester answers with one click": a confirmation mail in the demo's
    mailbox, its "Fixed" button, the next closure run closes the ticket; the Incident ops
    view shows the trail."""
    assert finished(demo, "incident_closure", first_closure_run(demo)) == "success"
    asks = poll(lambda: [m for m in demo.mail() if "Please confirm incident #" in m["subject"]],
                60, "a confirmation request in the mailbox")
    ticket_id = re.search(r"#(\d+)", asks[0]["subject"]).group(1)
    body = requests.get(f"{demo.mailbox}/mail/{asks[0]['id']}/body", timeout=30).text
    fixed = re.search(r'href="([^"]+/incident-ops/answer/[^"]+)"[^>]*>[^<]*Fixed<', body)
    assert fixed, body
    page = browser.open(fixed.group(1), width=800)
    page.get_by_role("button").click()
    page.wait_for_load_state("load")
    assert "answer is recorded" in page.content()
    run = demo.api("POST", "/api/v2/dags/incident_closure/dagRuns",
                   json={"logical_date": None})["dag_run_id"]
    assert finished(demo, "incident_closure", run) == "success"
    desk = requests.get(f"{demo.desk}/REST/2.0/ticket/{ticket_id}", auth=("root", "password"),
                        timeout=30).json()
    assert desk["Status"] == "closed", desk["Status"]
    view = browser.open(f"{demo.airflow}/incident-ops/view/ticket/{ticket_id}", width=1200)
    view.fill("input[name=username]", "admin")
    view.fill("input[name=password]", "admin")
    view.click("button:has-text('Sign in')")
    view.wait_for_url(f"**/incident-ops/view/ticket/{ticket_id}", timeout=30_000)
    assert "close.confirmed" in view.inner_text("body")


def test_the_mailbox_shows_urgent_notices_escalations_and_their_sms(demo):
    subjects = poll(lambda: (s := [m["subject"] for m in demo.mail()]) and
                    any("【紧急事件】" in x for x in s) and any("【事件升级" in x for x in s) and s,
                    240, "an urgent notice and an escalation in the mailbox")
    assert subjects
    sms = poll(demo.sms, 60, "an SMS in the mailbox")
    assert any(re.search(r"\d{11}", r["to"]) and r["text"] for r in sms), sms
    page = requests.get(demo.mailbox + "/", timeout=30).text
    assert "【紧急事件】" in page and "SMS (" in page


# ------------------------------------------------------------ the acceptance of alerts
def oncall_mail(demo: Demo) -> list[dict[str, Any]]:
    return [m for m in demo.mail() if ONCALL in m["to"]]


def test_a_killed_desk_reaches_on_call_once_within_the_deadline(demo):
    # Start from a quiet moment: no urgent run in flight, so every run from here on meets
    # a dead desk.
    poll(lambda: not [r for r in demo.runs("urgent_incidents")
                      if r["state"] in ("queued", "running")], 180, "urgent_incidents idle")
    before = {m["id"] for m in oncall_mail(demo)}
    runs_before = {r["dag_run_id"] for r in demo.runs("urgent_incidents")}
    stopped = demo.shell("PYTHONPATH=include .venv/bin/python -m incident_ops.embedded_desk stop")
    assert stopped.returncode == 0, stopped.stderr
    killed = time.monotonic()
    for _ in range(2):  # two runs queued now: one outage, one deadline alert
        assert demo.shell("scripts/airflow dags trigger urgent_incidents").returncode == 0
    triggered = [r["dag_run_id"] for r in demo.runs("urgent_incidents")
                 if r["dag_run_id"] not in runs_before and r["run_type"] == "manual"]
    assert len(triggered) == 2, triggered

    def new_alerts(kind: str) -> list[dict[str, Any]]:
        return [m for m in oncall_mail(demo) if m["id"] not in before and
                f"{kind}: urgent_incidents" in m["subject"]]

    deadline = poll(lambda: new_alerts("DEADLINE"), DEADLINE_MINUTES * 60 + 120,
                    "the deadline alert of urgent_incidents")
    took = time.monotonic() - killed
    print(f"\ndeadline alert {took:.0f} s after the desk was killed "
          f"(deadline {DEADLINE_MINUTES * 60:.0f} s from a run's queueing)")
    # Both triggered runs' deadlines were missed and decided (the triggerer logs each
    # decision): still one mail.
    log = demo.root / ".run" / "airflow.log"
    for run in triggered:
        poll(lambda run=run: f"deadline of urgent_incidents {run} (" in log.read_text(
            errors="replace"), 120, f"the triggerer's decision on the deadline of {run}")
    assert len(new_alerts("DEADLINE")) == 1, new_alerts("DEADLINE")
    alert = deadline[0]
    assert "has not succeeded for 1 min" in alert["subject"]
    text = requests.get(f"{demo.mailbox}/mail/{alert['id']}/text", timeout=30).text
    assert f"Run: {demo.airflow}/dags/urgent_incidents/runs/" in text
    assert "Failed task plan:" in text
    failed = new_alerts("FAILED")
    assert failed, "each failed run mails on-call"
    everything = oncall_mail(demo)
    ids = [m["message_id"] for m in everything]
    assert len(ids) == len(set(ids)), "an alert arrived twice"
    runs = [re.search(r"runs/(\S+)", requests.get(f"{demo.mailbox}/mail/{m['id']}/text",
                                                   timeout=30).text) for m in failed]
    assert len({r.group(1) for r in runs if r}) == len(failed), "two mails for one failed run"
    failed.sort(key=lambda m: m["id"])  # the mailbox lists the newest first
    assert all(m["in_reply_to"] == failed[0]["message_id"] for m in failed[1:]), \
        "the failures of one outage are one thread"

    # The desk comes back (docs/deploy.md, "Test it"): the next good run says so, once.
    back = demo.shell(f"DESK_PORT={demo.ports['DESK_PORT']} PYTHONPATH=include "
                      ".venv/bin/python -m incident_ops.embedded_desk start")
    assert back.returncode == 0, back.stderr
    assert demo.shell("scripts/airflow dags trigger urgent_incidents").returncode == 0
    [recovered] = poll(lambda: new_alerts("RECOVERED"), 240, "the recovery mail")
    assert recovered["in_reply_to"] == failed[0]["message_id"]


def test_every_listener_of_the_demo_is_on_loopback(demo):
    """Desk, mail catcher and Airflow (API server, scheduler, triggerer, DAG processor): no
    socket of theirs listens beyond 127.0.0.1 (Airflow's log servers, which would bind to
    every interface, are not started)."""
    import psutil

    roots = [int(p.read_text().strip()) for p in (demo.root / ".run").glob("*.pid")]
    roots.append(int(json.loads((demo.root / ".desk" / "rt-server.pid").read_text())["pid"]))
    processes = {}
    for pid in roots:
        parent = psutil.Process(pid)
        for proc in [parent, *parent.children(recursive=True)]:
            processes[proc.pid] = proc
    listening, titles = set(), []
    for proc in processes.values():
        try:  # a task process may end (or be a zombie) while we look: nothing to see there
            title = " ".join(proc.cmdline())
            sockets = proc.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        titles.append(title)
        listening |= {(proc.pid, title[:80], c.laddr.ip, c.laddr.port) for c in sockets
                      if c.status == psutil.CONN_LISTEN}
    ports = {port for *_, port in listening}
    assert {int(v) for v in demo.ports.values()} <= ports, listening
    assert {ip for _, _, ip, _ in listening} <= {"127.0.0.1", "::1"}, listening
    # "airflow serve-logs" is the log server's process title
    assert not [t for t in titles if re.search(r"(?<!-)\bserve-logs", t)], titles


def test_make_stop_stops_everything(demo):
    done = demo.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    for url in (demo.airflow + "/api/v2/monitor/health", demo.mailbox + "/"):
        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=5)
    assert not (Path(demo.root) / ".run" / "airflow.pid").exists()
