"""An answer is taken whenever it comes (issue 24, item 5): every question of a full
vendor-route emergency answered over REST within a second of its appearing, on a real
Airflow (API server, scheduler, DAG processor, triggerer, LocalExecutor).

An answer that lands while the worker that asked (or re-asked) the question is still
finishing is the hard case: Airflow resumes the task at once, and the stale exit of the
asking worker used to be taken for a task killed from outside (the attempt failed, Airflow
asked again, and after three attempts the run failed with no aftermath; the executor's
side of it is proven without timing luck in ``tests/unit/test_local_executor.py``). Here
two emergencies run at once (``$INCIDENT_OPS_FAST_ANSWER_RUNS``; five, then three, until CI
had to fit its 25 minutes on two cores: each run costs ~100 CPU-seconds of tasks, desk and API
server, and two already answer each other's questions in between); each asks 13
questions (101.2, then three rounds of solution, two approvals and *lifted?*), and the last
*lifted?* is answered wrongly twice (a recovery time before the incident was opened, then
none) and sent back, then answered with the minute the incident was opened. A poller
answers each question as soon as the hitlDetails list shows it open, before the task has
even parked when it can.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest

from incident_ops.model import TicketDraft
from incident_ops.policy import emergency as flow
from incident_ops.policy.emergency_records import MAJOR_REPORT_QUEUE, PROBLEM_QUEUE

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAG = "emergency_response"
RUNS = int(os.environ.get("INCIDENT_OPS_FAST_ANSWER_RUNS", "2"))
ROUNDS = 3  # the DAG's default ($INCIDENT_OPS_EMERGENCY_ROUNDS)
MANAGER = "sun.min"
HQ = "noc@group-hq.example.cn"
POLL = 0.5  # seconds between looks at the open questions (each a list request)
QUESTIONS_PER_RUN = 1 + 4 * ROUNDS


def _path(run_id: str, task_id: str) -> str:
    return (f"/api/v2/dags/{DAG}/dagRuns/{quote(run_id, safe='')}/taskInstances/"
            f"{quote(task_id, safe='')}/-1/hitlDetails")


def _local_minute(moment: datetime, tz: str) -> str:
    return moment.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


def _solution(k: int) -> dict[str, Any]:
    return {"solution": f"第 {k} 轮：切换到备用节点并重启服务", "vendor": "华信软件",
            "interrupts_business": False, "changes_it_component": False, "component": "",
            "group_support_needed": False, "group_request": ""}


def script(opened: datetime, tz: str) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Every answer of one run, by task, in the order given (a question sent back is answered
    again with the next one)."""
    empty_lifted = {"recovered_at": "", "recovery_note": ""}
    answers: dict[str, list[tuple[str, dict[str, Any]]]] = {
        "covered": [(flow.COVERED_VENDORS, {})]}
    for k in range(1, ROUNDS + 1):
        answers[f"round_{k}.propose_solution"] = [(flow.SUBMIT, _solution(k))]
        answers[f"round_{k}.approve_team_lead"] = [(flow.APPROVE, {})]
        answers[f"round_{k}.approve_leader"] = [(flow.APPROVE, {})]
        answers[f"round_{k}.lifted"] = [(flow.NOT_LIFTED, empty_lifted)]
    answers[f"round_{ROUNDS}.lifted"] = [
        # Sent back: before the incident was opened.
        (flow.LIFTED, {"recovered_at": _local_minute(opened - timedelta(days=1), tz),
                       "recovery_note": ""}),
        (flow.LIFTED, empty_lifted),  # sent back: lifting needs the recovery time
        # Taken: the minute the incident was opened is not before it.
        (flow.LIFTED, {"recovered_at": _local_minute(opened, tz),
                       "recovery_note": "备用节点接管后恢复"}),
    ]
    return answers


class FastAnswerer:
    """Answers the open questions of some runs over REST the moment it sees them, as the
    question's first assignee; records how long each answer took to be sent."""

    def __init__(self, server: Any, scripts: dict[str, dict[str, list]]) -> None:
        self.server, self.scripts = server, scripts
        self.given: dict[tuple[str, str], int] = {}  # answers the API server accepted
        self.delays: list[float] = []  # seen open → answer sent, seconds
        self.refused: list[str] = []
        self.server_errors: list[str] = []
        self._busy: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=RUNS)
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> FastAnswerer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._pool.shutdown(wait=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                listed = self.server.api(
                    "admin", "GET", f"/api/v2/dags/{DAG}/dagRuns/~/hitlDetails",
                    params={"response_received": "false", "limit": 100})
                details = listed.json().get("hitl_details", []) if listed.ok else []
            except Exception:  # noqa: BLE001 - a slow API server: look again
                details = []
            seen = time.monotonic()
            for detail in details:
                ti = detail["task_instance"]
                key = (ti["dag_run_id"], ti["task_id"])
                if key[0] not in self.scripts:
                    continue
                with self._lock:
                    if key in self._busy:
                        continue
                    self._busy.add(key)
                self._pool.submit(self._answer, key, detail, seen)
            self._stop.wait(POLL)

    def _answer(self, key: tuple[str, str], detail: dict[str, Any], seen: float) -> None:
        run_id, task_id = key
        try:
            n = self.given.get(key, 0)
            script = self.scripts[run_id][task_id]  # asked again after a failure: the last
            chosen, params = script[min(n, len(script) - 1)]
            assigned = [u["id"] for u in detail.get("assigned_users") or []]
            login = next((u for u in assigned if u in self.server.users), MANAGER)
            sent = time.monotonic()
            done = self.server.api(login, "PATCH", _path(run_id, task_id),
                                   json={"chosen_options": [chosen], "params_input": params})
            if done.ok:
                self.given[key] = n + 1
                self.delays.append(sent - seen)
            elif done.status_code >= 500:  # SQLite busy in the API server: the next look
                self.server_errors.append(f"{task_id}: {done.status_code}")  # answers again
            elif done.status_code != 409:  # 409: answered already (a stale listing)
                self.refused.append(f"{task_id} #{n + 1} by {login}: {done.status_code} "
                                    f"{done.text[:300]}")
        except Exception as exc:  # noqa: BLE001 - reported by the test, not lost in a thread
            self.refused.append(f"{task_id}: {exc!r}")
        finally:
            with self._lock:
                self._busy.discard(key)


def _xcom(server: Any, run_id: str, task_id: str) -> Any:
    answer = server.api("admin", "GET", f"/api/v2/dags/{DAG}/dagRuns/{quote(run_id, safe='')}/"
                        f"taskInstances/{quote(task_id, safe='')}/xcomEntries/return_value")
    answer.raise_for_status()
    return answer.json()["value"]


def _tries(server: Any, run_id: str) -> dict[str, tuple[str, int]]:
    answer = server.api("admin", "GET", f"/api/v2/dags/{DAG}/dagRuns/{quote(run_id, safe='')}"
                        "/taskInstances", params={"limit": 500})
    answer.raise_for_status()
    return {t["task_id"]: (str(t["state"]), int(t["try_number"]))
            for t in answer.json()["task_instances"]}


def test_every_question_answered_within_a_second_concurrent_emergencies_reach_their_aftermath(
        airflow_server, desk_url, mailbox):
    from incident_ops.airflow.provider.desk_hook import ServiceDeskHook
    from incident_ops.config import timezone

    server, tz = airflow_server, timezone()
    server.wait_dag(DAG)
    runs: dict[str, str] = {}  # run id → incident id
    scripts: dict[str, dict[str, list]] = {}
    with ServiceDeskHook() as hook:
        desk = hook.get_desk()
        for i in range(RUNS):
            tag = uuid.uuid4().hex[:8]
            tid = desk.create(TicketDraft(
                queue="Incidents", subject=f"[{tag}] CRM 全省受理失败 {i}", description="e2e",
                status="assigned-l2", priority="urgent", owner="liu.yang",
                requester="shop@example.cn", fields={"system": "crm", "impact": "major",
                                                     "source": "phone", "category": "fault"},
                idempotency_key=f"e2e:{tag}"))
            opened = desk.get(tid).created
            run_id = f"fast_answers__{tag}"
            scripts[run_id] = script(opened, tz)
            runs[run_id] = tid
        with FastAnswerer(server, scripts) as answerer:
            for run_id, tid in runs.items():
                server.trigger(DAG, {"ticket_id": tid, "system": "crm", "impact": "major",
                                     "symptoms": "CRM 全省受理失败，营业厅无法办理业务",
                                     "reporter": "li.na"}, as_user=MANAGER, run_id=run_id)
            deadline = time.monotonic() + 900
            while True:  # until every run has ended (or the deadline: then say where each is)
                states = {r: server.run_state(DAG, r) for r in runs}
                if time.monotonic() > deadline or all(
                        v in ("success", "failed") for v in states.values()):
                    break
                time.sleep(3)

        retried = {run_id: {t: st for t, st in _tries(server, run_id).items() if st[1] > 1}
                   for run_id in runs}
        print(f"\nrun states {states}\nretried tasks {retried}\nanswers "
              f"{sum(answerer.given.values())}, seen→sent max "
              f"{max(answerer.delays, default=0):.2f} s, refused {answerer.refused}, server errors "
              f"(answered again) {answerer.server_errors}")
        assert not answerer.refused
        assert states == dict.fromkeys(runs, "success"), (states, retried)
        assert retried == {r: {} for r in runs}  # no attempt failed, nothing asked twice
        assert max(answerer.delays) < 1.0
        for run_id, tid in runs.items():
            given = {task: n for (r, task), n in answerer.given.items() if r == run_id}
            assert len(given) == QUESTIONS_PER_RUN, given
            assert given[f"round_{ROUNDS}.lifted"] == 3  # two answers sent back
            closed = _xcom(server, run_id, "aftermath.announce_closed")
            problem, major = desk.get(closed["problem_id"]), desk.get(closed["major_report_id"])
            assert problem.queue == PROBLEM_QUEUE and f"#{tid} " in problem.subject
            assert major.queue == MAJOR_REPORT_QUEUE and f"#{tid} " in major.subject
            assert closed["rounds"] == ROUNDS
            lifted = mailbox.find(to=HQ, subject_contains=f"#{tid} 应急解除")
            assert len(lifted) == 1, [m["Subject"] for m in lifted]
            assert desk.get(tid).recovered_at == datetime.strptime(
                _local_minute(desk.get(tid).created, tz), "%Y-%m-%d %H:%M").replace(
                tzinfo=ZoneInfo(tz))


def test_an_answer_that_landed_as_the_question_parked_is_taken_within_seconds(
        airflow_server, desk_url):
    """On SQLite an answer committed at the very moment the task parks can be seen neither by
    the park nor by the answer's own resume (seen once in 75 answers above, before
    ``emergency.operators.SETTLE``): the task waits in awaiting_input with its answer in. Here
    that state is made directly in Airflow's database; the question's first, early wake takes
    the answer (not the first reminder, ten minutes on)."""
    import json
    import sqlite3
    from datetime import UTC

    from incident_ops.airflow.provider.desk_hook import ServiceDeskHook

    server = airflow_server
    tag = uuid.uuid4().hex[:8]
    with ServiceDeskHook() as hook:
        tid = hook.get_desk().create(TicketDraft(
            queue="Incidents", subject=f"[{tag}] CRM 工单提交失败", description="e2e",
            status="assigned-l2", priority="urgent", owner="liu.yang",
            requester="shop@example.cn", fields={"system": "crm", "impact": "high",
                                                 "source": "phone", "category": "fault"},
            idempotency_key=f"e2e:{tag}"))
    run_id = server.trigger(DAG, {"ticket_id": tid, "system": "crm", "impact": "high",
                                  "symptoms": "CRM 工单提交失败，营业厅无法受理",
                                  "reporter": "li.na"}, as_user=MANAGER)
    server.wait(lambda: server.waiting(DAG, run_id, "covered"), "the first question", 180)
    with sqlite3.connect(server.home / "airflow.db", timeout=30) as db:
        changed = db.execute(
            "UPDATE hitl_detail SET chosen_options = ?, params_input = '{}', responded_at = ?,"
            " responded_by = ? WHERE ti_id = (SELECT id FROM task_instance WHERE dag_id = ? "
            "AND run_id = ? AND task_id = 'covered')",
            (json.dumps([flow.COVERED_VENDORS]),
             datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
             json.dumps({"id": MANAGER, "name": MANAGER}), DAG, run_id)).rowcount
    assert changed == 1
    assert server.waiting(DAG, run_id, "covered")  # answered, and nothing resumed it
    # Success, not a wake that parks again: the answer was taken (a reminder is 10 min off).
    server.wait(lambda: server.task_states(DAG, run_id).get("covered") == "success",
                "the stranded answer to be taken", 60)
    server.api("admin", "PATCH", f"/api/v2/dags/{DAG}/dagRuns/{quote(run_id, safe='')}",
               json={"state": "failed"})  # the rest is the other tests' business
