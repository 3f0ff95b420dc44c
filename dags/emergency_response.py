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
from airflow.sdk import Asset, Label, TaskGroup, dag, get_current_context, task
from airflow.sdk import TriggerRule as TR

from incident_ops.airflow.bootstrap import services
from incident_ops.airflow.dag_defaults import DESK_POOL, alerting, default_args, timezone
from incident_ops.airflow.emergency import aftermath, rounds
from incident_ops.airflow.emergency import asking as ask
from incident_ops.airflow.emergency import opening as opening_steps
from incident_ops.airflow.emergency.form import (
    COVERED_PLAN,
    COVERED_VENDORS,
    LIFTED,
    NOT_LIFTED,
    STEPS_DONE,
    STEPS_PARTLY,
    SUBMIT,
    lifted_form,
    plan_notes_form,
    solution_form,
    trigger_form,
)
from incident_ops.airflow.emergency.ids import ANNOUNCE_LIFTED, COVERED, ESCALATE, round_task
from incident_ops.airflow.emergency.operators import (
    PreparedApproval,
    PreparedBranch,
    PreparedEntry,
    PreparedQuestion,
)
from incident_ops.config import plan_systems

ROUNDS = max(1, int(os.environ.get("INCIDENT_OPS_EMERGENCY_ROUNDS", "3")))
TZ = timezone()
CLOSED = Asset("incident-ops://emergency/closed")


# ------------------------------------------------------------ the steps, in process order
def opening() -> tuple[object, PreparedBranch]:
    """validate → 101.1 start notice → first route; 101.2 *covered by the plan?*"""
    # Tasks read the run's brief (validate's XCom) themselves rather than taking it as an
    # argument: an argument is an edge from validate, and the trigger rules of the round
    # and aftermath tasks must see only the branches that lead to them.
    @task(pool=DESK_POOL)  # retries: $INCIDENT_OPS_RETRIES, like every task
    def validate() -> dict:
        with services(get_current_context()) as s:
            return opening_steps.validate_task(s)

    @task(pool=DESK_POOL)
    def notify_start() -> dict:
        with services(get_current_context()) as s:
            return opening_steps.notify_start_task(s)

    @task.branch
    def start_route() -> str:
        return opening_steps.start_route_task(get_current_context(),
                                              round_task(1, "engage_vendors"))

    route = start_route()
    validate() >> notify_start() >> route
    covered = PreparedBranch(
        task_id=COVERED, prepare=ask.covered_question,
        subject="101.2 预案是否覆盖 / Covered by the contingency plan?",
        options=[COVERED_PLAN, COVERED_VENDORS],
        options_mapping={COVERED_PLAN: "plan.announce_route",
                         COVERED_VENDORS: round_task(1, "engage_vendors")})
    route >> Label("新应急 / new") >> covered
    return route, covered


def plan_route(covered: PreparedBranch) -> PreparedBranch:
    """101.3: announce the plan, the team carries out its steps, 101.5 *lifted?*"""
    with TaskGroup("plan", tooltip="101.3 按预案处置 / follow the contingency plan"):
        @task(pool=DESK_POOL)
        def announce_route() -> dict:
            with services(get_current_context()) as s:
                return opening_steps.announce_plan_task(s)

        follow = PreparedQuestion(
            task_id="follow_plan", prepare=ask.plan_steps_question,
            subject="101.3 按预案处置 / Carry out the plan's steps",
            options=[STEPS_DONE, STEPS_PARTLY], params=plan_notes_form())
        lifted = PreparedBranch(
            task_id="lifted", prepare=ask.lifted_question,
            subject="101.5 应急是否解除 / Emergency lifted?",
            options=[LIFTED, NOT_LIFTED], params=lifted_form(TZ),
            options_mapping={LIFTED: ANNOUNCE_LIFTED,
                             NOT_LIFTED: round_task(1, "engage_vendors")})
        covered >> Label("预案 / plan") >> announce_route() >> follow >> lifted
    return lifted


def vendor_round(k: int, ways_in: list, next_task: str) -> tuple[object, PreparedBranch]:
    """101.4–101.5, round ``k``: vendors → solution → two approvals → carried out →
    *lifted?* (no: ``next_task``, the next round or the escalation)."""
    with TaskGroup(f"round_{k}", tooltip=f"101.4–101.5 第 {k} 轮 / round {k}"):
        @task(pool=DESK_POOL, trigger_rule=TR.NONE_FAILED_MIN_ONE_SUCCESS)
        def engage_vendors(k: int = k) -> dict:
            with services(get_current_context()) as s:
                return rounds.engage_vendors_task(s, k)

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
            with services(get_current_context()) as s:
                return rounds.carry_out_task(s, k)

        # Runs after an approval and after a rejection (a Reject skips what follows the
        # approval), never in a round that did not start: it needs one upstream success.
        @task.branch(trigger_rule=TR.NONE_FAILED_MIN_ONE_SUCCESS)
        def approval_outcome(k: int = k, next_task: str = next_task) -> str:
            return rounds.approval_outcome_task(get_current_context(), k,
                                                round_task(k, "lifted"), next_task)

        lifted = PreparedBranch(
            task_id="lifted", prepare=ask.lifted_question, prepare_kwargs={"round": k},
            subject=f"101.5 应急是否解除 / Emergency lifted? (round {k})",
            options=[LIFTED, NOT_LIFTED], params=lifted_form(TZ),
            options_mapping={LIFTED: ANNOUNCE_LIFTED, NOT_LIFTED: next_task})

        engaged, done, outcome = engage_vendors(), carry_out(), approval_outcome()
        ways_in >> engaged >> propose >> lead >> leader >> done
        [propose, done] >> outcome
        outcome >> Label("已批准 / approved") >> lifted
    return outcome, lifted


def escalation(ways_in: list) -> None:
    """Still not lifted after the last round: escalate, and continue in a new run."""
    @task(task_id=ESCALATE, pool=DESK_POOL, trigger_rule=TR.NONE_FAILED_MIN_ONE_SUCCESS)
    def escalate() -> dict:
        with services(get_current_context()) as s:
            return rounds.escalate_task(s)

    escalated = escalate()
    ways_in >> escalated
    escalated >> TriggerDagRunOperator(
        task_id="continue_in_new_run", trigger_dag_id="emergency_response",
        conf=escalated["conf"], trigger_run_id=escalated["run_id"],  # type: ignore[index]
        skip_when_already_exists=True)


def aftermath_steps(lifted_questions: list) -> None:
    """101.6: lifted told; the report; the major incident report and the problem ticket."""
    with TaskGroup("aftermath", tooltip="101.6 善后与报告 / aftermath and reporting"):
        @task(pool=DESK_POOL, trigger_rule=TR.NONE_FAILED_MIN_ONE_SUCCESS)
        def announce_lifted() -> dict:
            with services(get_current_context()) as s:
                return aftermath.announce_lifted_task(s)

        @task(pool=DESK_POOL)
        def report() -> dict:
            with services(get_current_context()) as s:
                return aftermath.report_task(s)

        @task(pool=DESK_POOL)
        def major_incident_report(report: dict) -> str | None:
            with services(get_current_context()) as s:
                return aftermath.major_report_task(s, report)

        @task(pool=DESK_POOL)
        def problem_ticket(report: dict) -> str | None:
            with services(get_current_context()) as s:
                return aftermath.problem_task(s, report)

        @task(pool=DESK_POOL, outlets=[CLOSED])
        def announce_closed(report: dict, problem: str | None, major: str | None) -> dict:
            return aftermath.closed_task(get_current_context(), report, problem, major)

        lifted_announced = announce_lifted()
        lifted_questions >> lifted_announced
        written = report()
        # One after another: each records keys on the incident (read-modify-write). At
        # parse time the calls return XComArgs, which Airflow resolves when the tasks run.
        major = major_incident_report(written)  # type: ignore[arg-type]
        problem = problem_ticket(written)  # type: ignore[arg-type]
        lifted_announced >> written >> major >> problem
        announce_closed(written, problem, major)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ the DAG
@dag(
    schedule=None,
    catchup=False,
    doc_md=__doc__,
    tags=["itil", "incident", "emergency", "101", "hitl"],
    max_active_runs=8,  # several emergencies at once; each run is one emergency
    default_args=default_args(retry_seconds=30),
    params=trigger_form(plan_systems()),  # plans/*.yaml by name: a new plan file is a choice
    **alerting("emergency_response"),
)
def emergency_response():
    route, covered = opening()
    lifted = plan_route(covered)
    ways_in: list = [route, covered, lifted]  # the ways into round 1
    lifted_questions = [lifted]
    for k in range(1, ROUNDS + 1):
        next_task = round_task(k + 1, "engage_vendors") if k < ROUNDS else ESCALATE
        outcome, lifted = vendor_round(k, ways_in, next_task)
        ways_in = [outcome, lifted]
        lifted_questions.append(lifted)
    escalation(ways_in)
    aftermath_steps(lifted_questions)


emergency_response()
