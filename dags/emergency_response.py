"""
### emergency_response — the emergency sub-process (101), started by ops

Trigger it from the form (**Trigger** ▸ fill in the ticket, system, impact, symptoms,
reporter), the REST API or the CLI. The questions to people wait under **Required actions**.

| step | task | what happens |
|---|---|---|
| — | `validate` | one emergency per incident: another emergency of the ticket still running fails this run at once, naming and linking it, nothing sent (unless *start anyway* with a reason, recorded on the incident); the ticket exists and is open, the system has a usable plan, the reporter is known; otherwise the run fails at once naming the field, nothing sent |
| 101.1 | `notify_start` | initial report by mail to the team, provincial leaders, the group HQ and the plan's list; SMS to the team; comment on the ticket |
| 101.2 | `covered` | *covered by the plan?* — preselected from the plan's start conditions against the symptoms |
| 101.3 | `plan.*` | the plan's steps in the question; the team confirms them; *lifted?* |
| 101.4 | `round_N.*` | vendors engaged → solution (form) → team lead and leader approve → group told, emergency change raised and linked when the business is interrupted or a component changes, group centre asked when needed |
| 101.5 | `round_N.lifted` | *lifted?* no → the next round; after the last round a new run continues with the history |
| 101.6 | `aftermath.*` | group told it is lifted; report (HTML + printable) mailed to reporter, leaders, group; 《重大事件报告》 ticket when major; problem ticket to the problem manager; asset `incident-ops://emergency/closed` |

Each question is assigned to its role's Airflow logins (the plan's team and team lead,
contacts.yaml's leaders and incident manager; `airflow_user`), told to them by mail and SMS
with a link, reminded on the plan's `questions` cadence and escalated once to the incident
manager and management; an answer the form cannot check (a recovery time when *lifted*) is
sent back with the reason.

The group headquarters hears each key point once (start, route, approval, lifted): every
message and ticket carries an idempotency key recorded on the incident, so retries repeat
nothing. Plans: `include/config/plans/<system>.yaml`. Rounds per run:
`$INCIDENT_OPS_EMERGENCY_ROUNDS` (default 3). Connections: `servicedesk_default`,
`smtp_default`, `sms_default`. Reports: `reports/emergency_response/<date>/`.
"""

from __future__ import annotations

import os

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Asset, Label, Param, TaskGroup, dag, get_current_context, task
from airflow.sdk import TriggerRule as TR

from incident_ops.airflow.bootstrap import services
from incident_ops.airflow.dag_defaults import DESK_POOL, alerting, default_args, timezone
from incident_ops.airflow.emergency import asking as ask
from incident_ops.airflow.emergency.ids import ANNOUNCE_LIFTED, COVERED, ESCALATE, round_task
from incident_ops.airflow.emergency.operators import (
    PreparedApproval,
    PreparedBranch,
    PreparedEntry,
    PreparedQuestion,
)
from incident_ops.config import plan_systems
from incident_ops.policy.contingency import IMPACT_LABELS, IMPACTS
from incident_ops.policy.emergency import (
    COVERED_PLAN,
    COVERED_VENDORS,
    LIFTED,
    NOT_LIFTED,
    STEPS_DONE,
    STEPS_PARTLY,
    SUBMIT,
)

ROUNDS = max(1, int(os.environ.get("INCIDENT_OPS_EMERGENCY_ROUNDS", "3")))
TZ = timezone()
SYSTEMS = plan_systems()  # plans/*.yaml by name: a new plan file is a new choice
RECOVERY_PATTERN = r"^(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2})?$"
IMPACT_HELP = (
    "重大：全省或多个地市的核心业务中断或大面积受影响，或批量错误扣费；须提交《重大事件报告》"
    "(101.6)。高：一个地市或一项核心业务中断。中：业务受影响，但有替代手段。低：个别用户或非核心"
    "功能。/ Major: core business stopped or widely hit across the province or several "
    "cities, or wrong charges in bulk; files the Major Incident Report (101.6). High: one city "
    "or one core service stopped. Medium: business degraded, a workaround exists. Low: a few "
    "users, or a non-core function.")
CLOSED = Asset("incident-ops://emergency/closed")


# Functions, not constants: a HITL operator stores the answer in its Param objects, and a
# form shared between rounds would show one round's answer as the next round's default.
# A field typed "string" with an empty default is one the UI requires; ["null", "string"]
# is optional. What depends on the chosen option (a recovery time only when lifted) cannot be
# said in a form: the answer is checked and sent back (policy.questions.check_answer).
def _optional(title: str, description: str, **schema: object) -> Param:
    return Param(None, type=["null", "string"], title=title, description=description, **schema)


def lifted_form() -> dict:
    return {
        "recovered_at": _optional(
            "业务恢复时间 / Business recovered at",
            f"已解除时必填，YYYY-MM-DD HH:MM（{TZ} 时间）；未解除时留空 / Required when lifted, "
            f"YYYY-MM-DD HH:MM ({TZ} time); leave empty when not lifted",
            pattern=RECOVERY_PATTERN),
        "recovery_note": _optional("恢复情况 / How the business recovered",
                                   "选填 / Optional", format="multiline"),
    }


def solution_form() -> dict:
    return {
        "solution": Param("", type="string", format="multiline", title="方案 / Solution",
                          description="必填 / Required"),
        "vendor": _optional("厂商 / Vendor", "选填 / Optional"),
        "interrupts_business": Param(False, type="boolean",
                                     title="中断业务 / Interrupts the business",
                                     description="是则自动创建紧急变更单 / Yes raises an "
                                                 "emergency change request"),
        "changes_it_component": Param(False, type="boolean",
                                      title="变更 IT 组件 / Changes an IT component",
                                      description="是则自动创建紧急变更单 / Yes raises an "
                                                  "emergency change request"),
        "component": _optional("组件 / Component (configuration item)",
                               "变更 IT 组件时必填 / Required when a component changes"),
        "group_support_needed": Param(False, type="boolean",
                                      title="需要集团中心支持 / Group centre must step in",
                                      description="选填 / Optional"),
        "group_request": _optional("请求集团的内容 / What the group is asked",
                                   "需要集团中心支持时必填 / Required when the group centre "
                                   "must step in"),
    }


@dag(
    schedule=None,
    catchup=False,
    doc_md=__doc__,
    tags=["itil", "incident", "emergency", "101", "hitl"],
    max_active_runs=8,  # several emergencies at once; each run is one emergency
    default_args=default_args(retry_seconds=30),
    params={
        "ticket_id": Param(type="string", pattern=r"^[0-9]+$", title="事件单号 / Incident ticket",
                           description="服务台中处于打开状态的事件单 / An open incident in the desk"),
        # No defaults for system and impact: whoever triggers chooses them consciously.
        "system": Param(type="string", enum=list(SYSTEMS), values_display=SYSTEMS,
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
        "dry_run": Param(False, type="boolean", title="演练 / Dry run",
                         description="走完流程并提问，但不发送、不创建任何内容；每步的计划页显示将会做什么 / "
                         "Walk the process and ask the questions, but send and create nothing: "
                         "each step's plan page shows what it would do."),
        # One emergency per incident (issue 24): a second start is refused unless ticked.
        "start_anyway": Param(False, type="boolean", section="另行启动 / Start anyway",
                              title="另一起应急，仍然启动 / Start anyway: a separate emergency",
                              description="该事件单已有应急在进行时，默认拒绝再次启动；仅当确属另一起"
                              "应急时勾选并填写原因（记入工单）/ A start for an incident whose "
                              "emergency is still running is refused; tick only for a genuinely "
                              "separate emergency, and say why (recorded on the incident)."),
        "start_anyway_reason": Param(None, type=["null", "string"], format="multiline",
                                     section="另行启动 / Start anyway",
                                     title="原因 / Why it is a separate emergency",
                                     description="勾选“仍然启动”时必填 / Required with start "
                                     "anyway"),
        "continuation": Param(None, type=["null", "object"], section="续跑 / Continuation",
                              title="续跑（由流程自动填写）/ Continuation (set by the DAG)",
                              description="留空 / Leave empty: filled in when an emergency "
                              "outlasts one run's rounds."),
    },
    **alerting("emergency_response"),
)
def emergency_response():
    # Tasks read the run's brief (validate's XCom) themselves rather than taking it as an
    # argument: an argument is an edge from validate, and the trigger rules of the round
    # and aftermath tasks must see only the branches that lead to them.
    @task(pool=DESK_POOL)  # retries: $INCIDENT_OPS_RETRIES, like every task
    def validate() -> dict:
        from incident_ops.airflow.emergency.steps import validate_task

        with services(get_current_context()) as s:
            return validate_task(s)

    @task(pool=DESK_POOL)
    def notify_start() -> dict:
        from incident_ops.airflow.emergency.steps import notify_start_task

        with services(get_current_context()) as s:
            return notify_start_task(s)

    @task.branch
    def start_route() -> str:
        from incident_ops.airflow.emergency.steps import start_route_task

        return start_route_task(get_current_context(), round_task(1, "engage_vendors"))

    route = start_route()
    validate() >> notify_start() >> route

    covered = PreparedBranch(
        task_id=COVERED, prepare=ask.covered_question,
        subject="101.2 预案是否覆盖 / Covered by the contingency plan?",
        options=[COVERED_PLAN, COVERED_VENDORS],
        options_mapping={COVERED_PLAN: "plan.announce_route",
                         COVERED_VENDORS: round_task(1, "engage_vendors")})
    route >> Label("新应急 / new") >> covered

    with TaskGroup("plan", tooltip="101.3 按预案处置 / follow the contingency plan"):
        @task(pool=DESK_POOL)
        def announce_route() -> dict:
            from incident_ops.airflow.emergency.steps import announce_plan_task

            with services(get_current_context()) as s:
                return announce_plan_task(s)

        follow = PreparedQuestion(
            task_id="follow_plan", prepare=ask.plan_steps_question,
            subject="101.3 按预案处置 / Carry out the plan's steps",
            options=[STEPS_DONE, STEPS_PARTLY],
            params={"notes": _optional("备注 / Notes", "部分步骤未能执行时必填：哪些步骤、原因 / "
                                       "Required when some steps could not be carried out: "
                                       "which, and why", format="multiline")})
        plan_lifted = PreparedBranch(
            task_id="lifted", prepare=ask.lifted_question,
            subject="101.5 应急是否解除 / Emergency lifted?",
            options=[LIFTED, NOT_LIFTED], params=lifted_form(),
            options_mapping={LIFTED: ANNOUNCE_LIFTED,
                             NOT_LIFTED: round_task(1, "engage_vendors")})
        covered >> Label("预案 / plan") >> announce_route() >> follow >> plan_lifted

    previous: list = [route, covered, plan_lifted]  # the ways into round 1
    lifted_questions = [plan_lifted]
    for k in range(1, ROUNDS + 1):
        next_task = round_task(k + 1, "engage_vendors") if k < ROUNDS else ESCALATE
        with TaskGroup(f"round_{k}", tooltip=f"101.4–101.5 第 {k} 轮 / round {k}"):
            @task(pool=DESK_POOL, trigger_rule=TR.NONE_FAILED_MIN_ONE_SUCCESS)
            def engage_vendors(k: int = k) -> dict:
                from incident_ops.airflow.emergency.steps import engage_vendors_task

                with services(get_current_context()) as s:
                    return engage_vendors_task(s, k)

            propose = PreparedEntry(
                task_id="propose_solution", prepare=ask.solution_entry,
                prepare_kwargs={"round": k}, subject=f"101.4 方案 / Solution, round {k}",
                options=[SUBMIT], defaults=[SUBMIT], params=solution_form())
            lead = PreparedApproval(
                task_id="approve_team_lead", prepare=ask.approval_question,
                prepare_kwargs={"round": k, "role": "team_lead"},
                subject=f"101.4 组长审批 / Team lead approval, round {k}")
            leader = PreparedApproval(
                task_id="approve_leader", prepare=ask.approval_question,
                prepare_kwargs={"round": k, "role": "leader"},
                subject=f"101.4 领导审批 / Leader approval, round {k}")

            @task(pool=DESK_POOL)
            def carry_out(k: int = k) -> dict:
                from incident_ops.airflow.emergency.steps import carry_out_task

                with services(get_current_context()) as s:
                    return carry_out_task(s, k)

            # Runs after an approval and after a rejection (a Reject skips what follows the
            # approval), never in a round that did not start: it needs one upstream success.
            @task.branch(trigger_rule=TR.NONE_FAILED_MIN_ONE_SUCCESS)
            def approval_outcome(k: int = k, next_task: str = next_task) -> str:
                from incident_ops.airflow.emergency.steps import approval_outcome_task

                return approval_outcome_task(get_current_context(), k,
                                             round_task(k, "lifted"), next_task)

            lifted = PreparedBranch(
                task_id="lifted", prepare=ask.lifted_question, prepare_kwargs={"round": k},
                subject=f"101.5 应急是否解除 / Emergency lifted? (round {k})",
                options=[LIFTED, NOT_LIFTED], params=lifted_form(),
                options_mapping={LIFTED: ANNOUNCE_LIFTED, NOT_LIFTED: next_task})

            engaged, done, outcome = engage_vendors(), carry_out(), approval_outcome()
            previous >> engaged >> propose >> lead >> leader >> done
            [propose, done] >> outcome
            outcome >> Label("已批准 / approved") >> lifted
        previous = [outcome, lifted]
        lifted_questions.append(lifted)

    @task(task_id=ESCALATE, pool=DESK_POOL, trigger_rule=TR.NONE_FAILED_MIN_ONE_SUCCESS)
    def escalate() -> dict:
        from incident_ops.airflow.emergency.steps import escalate_task

        with services(get_current_context()) as s:
            return escalate_task(s)

    escalated = escalate()
    previous >> escalated
    escalated >> TriggerDagRunOperator(
        task_id="continue_in_new_run", trigger_dag_id="emergency_response",
        conf=escalated["conf"], trigger_run_id=escalated["run_id"],
        skip_when_already_exists=True)

    with TaskGroup("aftermath", tooltip="101.6 善后与报告 / aftermath and reporting"):
        @task(pool=DESK_POOL, trigger_rule=TR.NONE_FAILED_MIN_ONE_SUCCESS)
        def announce_lifted() -> dict:
            from incident_ops.airflow.emergency.steps import announce_lifted_task

            with services(get_current_context()) as s:
                return announce_lifted_task(s)

        @task(pool=DESK_POOL)
        def report() -> dict:
            from incident_ops.airflow.emergency.steps import report_task

            with services(get_current_context()) as s:
                return report_task(s)

        @task(pool=DESK_POOL)
        def major_incident_report(report: dict) -> str | None:
            from incident_ops.airflow.emergency.steps import major_report_task

            with services(get_current_context()) as s:
                return major_report_task(s, report)

        @task(pool=DESK_POOL)
        def problem_ticket(report: dict) -> str | None:
            from incident_ops.airflow.emergency.steps import problem_task

            with services(get_current_context()) as s:
                return problem_task(s, report)

        @task(pool=DESK_POOL, outlets=[CLOSED])
        def announce_closed(report: dict, problem: str | None, major: str | None) -> dict:
            from incident_ops.airflow.emergency.steps import closed_task

            return closed_task(get_current_context(), report, problem, major)

        lifted_announced = announce_lifted()
        lifted_questions >> lifted_announced
        written = report()
        # One after another: each records keys on the incident (read-modify-write).
        major = major_incident_report(written)
        problem = problem_ticket(written)
        lifted_announced >> written >> major >> problem
        announce_closed(written, problem, major)

emergency_response()
