"""emergency_response with its people: a real Airflow (API server, scheduler, triggerer, DAG
processor) and a real browser (Debian's Chromium under Playwright), against this session's
desk, SMTP and SMS receivers (issue 16).

What ``dag.test()`` cannot show: the API server enforcing a question's assignees, what each
person sees on the question's page, what the buttons let them do, and the scheduler waking a
waiting question for its reminder. Questions the test is not about are answered over the
REST API by their assignee; the ones it is about are answered in the browser by the person
the plan names. Each question page is saved as a screenshot in ``docs/screenshots/``.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from incident_ops.model import TicketDraft
from incident_ops.policy import emergency as flow

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "docs" / "screenshots"
DAG = "emergency_response"
LEAD, LEADER, MANAGER, STRANGER = "liu.yang", "zheng.gang", "sun.min", "chen.jing"
ASK, REMIND = "【应急待回答】", "【应急提醒"


@pytest.fixture
def incident(airflow_server, desk_url) -> str:
    from incident_ops.airflow.hooks import ServiceDeskHook

    tag = uuid.uuid4().hex[:8]
    with ServiceDeskHook() as hook:
        return hook.get_desk().create(TicketDraft(
            queue="Incidents", subject=f"[{tag}] CRM 报表乱码", description="e2e",
            status="assigned-l2", priority="urgent", owner=LEAD, requester="shop@example.cn",
            fields={"system": "crm", "impact": "high", "source": "phone", "category": "fault"},
            idempotency_key=f"e2e:{tag}"))


def path(run_id: str, task_id: str) -> str:
    return (f"/api/v2/dags/{DAG}/dagRuns/{quote(run_id, safe='')}/taskInstances/"
            f"{quote(task_id, safe='')}/-1/hitlDetails")


def answer(server: Any, run_id: str, task_id: str, login: str, chosen: str,
           params: dict[str, Any] | None = None) -> Any:
    server.wait(lambda: server.waiting(DAG, run_id, task_id), f"{task_id} to be asked", 120)
    return server.api(login, "PATCH", path(run_id, task_id),
                      json={"chosen_options": [chosen], "params_input": params or {}})


def answered(server: Any, run_id: str, task_id: str) -> dict[str, Any]:
    detail = server.api("admin", "GET", path(run_id, task_id)).json()
    return detail if detail.get("response_received") else {}


def question_page(server: Any, browser: Any, run_id: str, task_id: str, login: str,
                  shot: str) -> Any:
    """The question's page as ``login`` sees it, signed in, saved as a screenshot."""
    server.wait(lambda: server.waiting(DAG, run_id, task_id), f"{task_id} to be asked", 120)
    page = browser.open(server.task_url(DAG, run_id, task_id), width=1280, height=1000,
                        timezone="Asia/Shanghai", wait_until="networkidle")
    server.sign_in(page, login)
    page.get_by_role("button").last.wait_for(timeout=30_000)  # the form has rendered
    browser.screenshot(page, SHOTS / shot)
    return page


def solution_form(text: str) -> dict[str, Any]:
    return {"solution": text, "vendor": "华信软件", "interrupts_business": False,
            "changes_it_component": False, "component": "", "group_support_needed": False,
            "group_request": ""}


def test_the_leader_answers_his_question_in_the_browser_and_nobody_else_can(
        airflow_server, browser, incident, mailbox):
    server = airflow_server
    run_id = server.trigger(DAG, {"ticket_id": incident, "system": "crm", "impact": "high",
                                  "symptoms": "CRM 报表页面偶发乱码，部分地市营业厅打印异常",
                                  "reporter": "li.na"}, as_user=MANAGER)
    assert answer(server, run_id, "covered", MANAGER, flow.COVERED_VENDORS).ok
    assert answer(server, run_id, "round_1.propose_solution", LEAD, flow.SUBMIT,
                  solution_form("切换报表服务到备用节点")).ok
    assert answer(server, run_id, "round_1.approve_team_lead", LEAD, flow.APPROVE).ok

    # Someone who is not a leader: the API server refuses, and the question stays open.
    server.wait(lambda: server.waiting(DAG, run_id, "round_1.approve_leader"),
                "the leader's question", 120)
    refused = server.api(STRANGER, "PATCH", path(run_id, "round_1.approve_leader"),
                         json={"chosen_options": [flow.APPROVE], "params_input": {}})
    assert refused.status_code == 403, refused.text
    assert not answered(server, run_id, "round_1.approve_leader")

    # The leader, in the browser.
    page = question_page(server, browser, run_id, "round_1.approve_leader", LEADER,
                         "emergency-approve-leader.png")
    page.get_by_role("button", name=flow.APPROVE).click()
    server.wait(lambda: answered(server, run_id, "round_1.approve_leader"),
                "the leader's answer", 60)
    detail = answered(server, run_id, "round_1.approve_leader")
    assert detail["chosen_options"] == [flow.APPROVE]
    assert detail["responded_by_user"]["id"] == LEADER
