"""The ``emergency_response`` DAG's forms: the trigger form and the questions' answer forms.

Functions, not constants: a HITL operator stores the answer in its Param objects, and a form
shared between rounds would show one round's answer as the next round's default. The UI marks a
field required (the red asterisk) when its type does not admit null: "string" is required,
["null", "string"] optional, and a toggle is ["boolean", "null"] (``toggle``): off unless
ticked, never required (tests/unit/test_forms.py checks every form).
What depends on the chosen option (a recovery time only when lifted) cannot be said in a
form: the answer is checked and sent back (``policy.questions.check_answer``).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param

from incident_ops.policy.contingency import IMPACT_LABELS, IMPACTS

# The questions' options, in the words policy reads back from the answers; the DAG file takes
# them from here (DAG files are wiring: they never import policy).
from incident_ops.policy.emergency import (  # noqa: F401 (re-exported for the DAG file)
    COVERED_PLAN,
    COVERED_VENDORS,
    LIFTED,
    NOT_LIFTED,
    STEPS_DONE,
    STEPS_PARTLY,
    SUBMIT,
)

RECOVERY_PATTERN = r"^(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2})?$"
IMPACT_HELP = (
    "重大：全省或多个地市的核心业务中断或大面积受影响，或批量错误扣费；须提交《重大事件报告》"
    "(101.6)。高：一个地市或一项核心业务中断。中：业务受影响，但有替代手段。低：个别用户或非核心"
    "功能。/ Major: core business stopped or widely hit across the province or several "
    "cities, or wrong charges in bulk; files the Major Incident Report (101.6). High: one city "
    "or one core service stopped. Medium: business degraded, a workaround exists. Low: a few "
    "users, or a non-core function.")


def optional(title: str, description: str, **schema: Any) -> Param:
    return Param(None, type=["null", "string"], title=title, description=description, **schema)


def toggle(title: str, description: str, **schema: Any) -> Param:
    """A yes/no switch, off by default; optional (an empty answer means no)."""
    return Param(False, type=["boolean", "null"], title=title, description=description,
                 **schema)


def trigger_form(systems: dict[str, str]) -> dict[str, Param]:
    """What whoever starts an emergency fills in; ``systems``: the plans by name
    (``config.plan_systems``: a new plan file is a new choice)."""
    return {
        "ticket_id": Param(type="string", pattern=r"^[0-9]+$",
                           title="事件单号 / Incident ticket",
                           description="服务台中处于打开状态的事件单 / An open incident in the "
                           "desk"),
        # No defaults for system and impact: whoever triggers chooses them consciously.
        "system": Param(type="string", enum=list(systems), values_display=systems,
                        title="受影响系统 / Affected system",
                        description="有应急预案的系统；与工单记录不一致时流程会提示 / Systems "
                        "with a contingency plan; a choice that differs from the ticket's is "
                        "flagged in the first question and the start mail"),
        "impact": Param(type="string", enum=list(IMPACTS), values_display=IMPACT_LABELS,
                        title="影响度 / Impact", description=IMPACT_HELP),
        "symptoms": Param(type="string", minLength=4, format="multiline",
                          title="现象 / Symptoms", description="看到了什么、影响范围 / "
                          "What is seen, how far it reaches"),
        "reporter": Param(type="string", pattern=r"^\S+$", title="报告人 / Reporter",
                          description="邮箱、通讯录键或服务台用户名 / E-mail, contacts key or "
                          "desk user"),
        "dry_run": toggle("演练 / Dry run",
                          "走完流程并提问，但不发送、不创建任何内容；每步的计划页显示将会做什么 "
                          "/ Walk the process and ask the questions, but send and create "
                          "nothing: each step's plan page shows what it would do."),
        # One emergency per incident (issue 24): a second start is refused unless ticked.
        "start_anyway": toggle("另一起应急，仍然启动 / Start anyway: a separate emergency",
                               "该事件单已有应急在进行时，默认拒绝再次启动；仅当确属另一起应急时"
                               "勾选并填写原因（记入工单）/ A start for an incident whose "
                               "emergency is still running is refused; tick only for a "
                               "genuinely separate emergency, and say why (recorded on the "
                               "incident).", section="另行启动 / Start anyway"),
        "start_anyway_reason": Param(None, type=["null", "string"], format="multiline",
                                     section="另行启动 / Start anyway",
                                     title="原因 / Why it is a separate emergency",
                                     description="勾选“仍然启动”时必填 / Required with start "
                                     "anyway"),
        "continuation": Param(None, type=["null", "object"], section="续跑 / Continuation",
                              title="续跑（由流程自动填写）/ Continuation (set by the DAG)",
                              description="留空 / Leave empty: filled in when an emergency "
                              "outlasts one run's rounds."),
    }


def plan_notes_form() -> dict[str, Param]:
    """101.3: what the team says about the plan's steps."""
    return {"notes": optional("备注 / Notes", "部分步骤未能执行时必填：哪些步骤、原因 / "
                              "Required when some steps could not be carried out: "
                              "which, and why", format="multiline")}


def lifted_form(tz: str) -> dict[str, Param]:
    """101.5: lifted, and when the business recovered (in the deployment's zone ``tz``)."""
    return {
        "recovered_at": optional(
            "业务恢复时间 / Business recovered at",
            f"已解除时必填，YYYY-MM-DD HH:MM（{tz} 时间）；未解除时留空 / Required when lifted, "
            f"YYYY-MM-DD HH:MM ({tz} time); leave empty when not lifted",
            pattern=RECOVERY_PATTERN),
        "recovery_note": optional("恢复情况 / How the business recovered",
                                  "选填 / Optional", format="multiline"),
    }


def solution_form() -> dict[str, Param]:
    """101.4: the solution a round proposes."""
    return {
        "solution": Param("", type="string", format="multiline", title="方案 / Solution",
                          description="必填 / Required"),
        "vendor": optional("厂商 / Vendor", "选填 / Optional"),
        "interrupts_business": toggle("中断业务 / Interrupts the business",
                                      "是则自动创建紧急变更单 / Yes raises an emergency "
                                      "change request"),
        "changes_it_component": toggle("变更 IT 组件 / Changes an IT component",
                                       "是则自动创建紧急变更单 / Yes raises an emergency "
                                       "change request"),
        "component": optional("组件 / Component (configuration item)",
                              "变更 IT 组件时必填 / Required when a component changes"),
        "group_support_needed": toggle("需要集团中心支持 / Group centre must step in",
                                       "选填 / Optional"),
        "group_request": optional("请求集团的内容 / What the group is asked",
                                  "需要集团中心支持时必填 / Required when the group centre "
                                  "must step in"),
    }
