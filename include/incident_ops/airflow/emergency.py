"""Task helpers of the ``emergency_response`` DAG (sub-process 101): the I/O around the policy.

Each function is one task's body; the DAG file only wires them. The run's *brief* (what
``validate`` checked and resolved: ticket, plan, recipients, keys' scope) travels through
XCom; the human decisions are read back from the HITL operators' ``answer`` XCom.

Side effects are keyed (``policy.emergency_flow.key``): ``Step.once`` sends a key's
messages and records the key on the incident together with a comment, in that order, and
skips a key the incident already carries. A retried task therefore sends nothing twice;
the one window left is a crash between sending and recording, where the deterministic
``Message-ID`` lets the receiving mail client fold the duplicate.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from incident_ops.airflow.emergency_tasks import (
    ANSWER_KEY,
    COVERED,
    PLAN_FOLLOW,
    PLAN_LIFTED,
    VALIDATE,
    round_task,
    rounds_in,
)
from incident_ops.airflow.runtime import AirflowNotifier, run_info
from incident_ops.desk.port import ServiceDesk, StaleTicket
from incident_ops.model import TicketChange
from incident_ops.notify.messages import Email, Sms
from incident_ops.policy import emergency_flow as flow
from incident_ops.policy.emergency import ContingencyPlan

log = logging.getLogger(__name__)

DESK_CONN = "servicedesk_default"
MARK_ATTEMPTS = 4


def tz_name() -> str:
    return os.environ.get("INCIDENT_OPS_TIMEZONE", "Asia/Shanghai")


def brief_of(context: Any) -> dict[str, Any]:
    brief = context["ti"].xcom_pull(task_ids=VALIDATE)
    if not brief:
        raise RuntimeError("the validate task left no brief; was it skipped?")
    return dict(brief)


def answer_of(context: Any, task_id: str, step: str, question: str) -> flow.Answer | None:
    payload = context["ti"].xcom_pull(task_ids=task_id, key=ANSWER_KEY)
    return flow.Answer.from_xcom(step, question, payload)


def now() -> datetime:
    return datetime.now(UTC)


def event(step: str, who: str, what: str, at: datetime | None = None) -> dict[str, Any]:
    return {"at": (at or now()).isoformat(), "step": step, "who": who, "what": what}


class Step:
    """One task's access to the desk and the senders, with the keyed ``once``."""

    def __init__(self, brief: dict[str, Any], context: Any, step: str):
        self.brief = brief
        self.step = step
        self.info = run_info(context)
        self.notifier = AirflowNotifier()
        self._hook: Any = None

    @property
    def desk(self) -> ServiceDesk:
        if self._hook is None:
            from incident_ops.airflow.hooks import ServiceDeskHook

            self._hook = ServiceDeskHook(DESK_CONN)
        desk: ServiceDesk = self._hook.get_desk()
        return desk

    def close(self) -> None:
        if self._hook is not None:
            self._hook.close()

    def __enter__(self) -> Step:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def incident_id(self) -> str:
        return str(self.brief["incident"]["id"])

    def done(self, key: str, ticket_id: str | None = None) -> bool:
        return key in self.desk.get(ticket_id or self.incident_id).automation_keys

    def once(self, key: str, comment: str, emails: Sequence[Email] = (),
             sms: Sequence[Sms] = (), ticket_id: str | None = None) -> bool:
        """Send, then record ``key`` with ``comment`` on the ticket; skip a recorded key."""
        tid = ticket_id or self.incident_id
        if self.done(key, tid):
            log.info("%s: %s already done on #%s, not repeated", self.step, key, tid)
            return False
        for email in emails:
            if email.to or email.cc:
                self.notifier.send_email(email)
        for message in sms:
            if message.to:
                self.notifier.send_sms(message)
        self.mark(key, comment, tid)
        return True

    def mark(self, key: str, comment: str, ticket_id: str,
             fields: Mapping[str, Any] | None = None) -> None:
        """Comment and key (and ``fields``) in one desk transaction; re-read and retry if
        someone wrote between."""
        for attempt in range(MARK_ATTEMPTS):
            ticket = self.desk.get(ticket_id)
            change = TicketChange(
                ticket_id=ticket_id,
                fields={**(fields or {}),
                        "automation_keys": flow.merged_keys(ticket.automation_keys, key),
                        "automation": f"{self.step} emergency_response · run {self.info.run_id}"},
                expected_version=ticket.version)
            try:
                self.desk.comment(ticket_id, f"[{self.step}] {comment}\n"
                                             f"(emergency_response run {self.info.run_id})",
                                  change=change)
                return
            except StaleTicket:
                log.info("#%s changed while marking %s (try %d); re-reading", ticket_id, key,
                         attempt + 1)
        raise StaleTicket(f"could not record {key} on #{ticket_id}: it keeps changing",
                          ticket_id=ticket_id)


def mail(template: str, to: Sequence[str], context: dict[str, Any], key: str,
         cc: Sequence[str] = ()) -> Email:
    from incident_ops.notify.compose import render_email

    to_u = tuple(dict.fromkeys(to))
    cc_u = tuple(a for a in dict.fromkeys(cc) if a not in to_u)
    return render_email(template, to_u, context, key, cc=cc_u)


def text_message(template: str, to: Sequence[str], context: dict[str, Any], key: str) -> Sms:
    from incident_ops.notify.compose import render_sms

    return render_sms(template, tuple(dict.fromkeys(to)), context, key)


def mail_context(brief: dict[str, Any], run_id: str, **extra: Any) -> dict[str, Any]:
    inc = brief["incident"]
    return {"id": inc["id"], "subject": inc["subject"], "run_id": run_id,
            "system": brief["system_label"], "impact": brief["impact_label"],
            "major": brief["major"], "symptoms": brief["params"]["symptoms"],
            "reporter": brief["params"]["reporter"], "emergency_id": brief["emergency_id"],
            "plan": ContingencyPlan.from_dict(brief["plan"]),
            "actions_url": required_actions_url(run_id), **extra}


def required_actions_url(run_id: str) -> str | None:
    """Where people answer the questions, when the API's base URL is configured."""
    from urllib.parse import quote

    try:
        from airflow.providers.common.compat.sdk import conf

        base = conf.get("api", "base_url", fallback=None)
    except Exception:  # noqa: BLE001 - a link is a convenience, never a failure
        base = None
    if not base:
        return None
    return f"{base.rstrip('/')}/dags/emergency_response/runs/{quote(run_id, safe='')}"


def hq_keypoint(step: Step, point: str, what: str, *parts: object, **extra: Any) -> bool:
    """Tell the group headquarters of a key point, once (101 principles)."""
    brief = step.brief
    k = flow.key(brief, f"hq-{point}", *parts)
    email = mail("emergency_keypoint", brief["to"]["group_hq"],
                 mail_context(brief, step.info.run_id, point=point, what=what, **extra), k,
                 cc=brief["to"]["leaders"])
    return step.once(k, f"集团公司已通报 / group HQ informed: {what}", [email])


# ------------------------------------------------------------------ reading the run
def collect_rounds(context: Any, brief: dict[str, Any]) -> tuple[list[flow.Round],
                                                                 list[flow.Answer]]:
    """The rounds so far (earlier runs' first) and every human decision of this run."""
    rounds = [flow.Round.from_dict(r) for r in brief.get("history", [])]
    decisions: list[flow.Answer] = []
    covered = answer_of(context, COVERED, "101.2", flow.Q_COVERED)
    decisions += [covered] if covered else []
    steps = answer_of(context, PLAN_FOLLOW, "101.3", flow.Q_STEPS)
    if steps is not None:
        lifted = answer_of(context, PLAN_LIFTED, "101.5", flow.Q_LIFTED)
        decisions += [a for a in (steps, lifted) if a]
        rounds.append(flow.Round(0, flow.ROUTE_PLAN, None, None, (), steps, None, False, lifted))
    offset = int(brief.get("round_offset", 0))
    for k in range(1, rounds_in(context["dag"].task_ids) + 1):
        n = offset + k
        proposed = answer_of(context, round_task(k, "propose_solution"), "101.4",
                             f"{flow.Q_SOLUTION} ({n})")
        if proposed is None:
            break
        approvals = [a for a in (
            answer_of(context, round_task(k, "approve_team_lead"), "101.4",
                      f"{flow.Q_APPROVE_LEAD} ({n})"),
            answer_of(context, round_task(k, "approve_leader"), "101.4",
                      f"{flow.Q_APPROVE_LEADER} ({n})")) if a]
        lifted = answer_of(context, round_task(k, "lifted"), "101.5", f"{flow.Q_LIFTED} ({n})")
        done = context["ti"].xcom_pull(task_ids=round_task(k, "carry_out")) or {}
        decisions += [proposed, *approvals, *([lifted] if lifted else [])]
        rounds.append(flow.Round(n, flow.ROUTE_VENDORS, flow.Solution.from_params(proposed.params),
                                 proposed, tuple(approvals), None, done.get("change_request"),
                                 bool(done.get("group_asked")), lifted))
    return rounds, decisions


def history_markdown(rounds: Sequence[flow.Round]) -> str:
    if not rounds:
        return "_首轮 / first round_"
    lines = []
    for r in rounds:
        if r.route == flow.ROUTE_PLAN:
            lines.append(f"- **预案处置 / plan route** — {flow.OUTCOME_LABELS[r.outcome]}")
        else:
            sol = r.solution.text if r.solution else "—"
            lines.append(f"- **第 {r.number} 轮 / round {r.number}** — {sol} → "
                         f"**{flow.OUTCOME_LABELS[r.outcome]}**")
    return "\n".join(lines)


# ------------------------------------------------------------------------ the tasks
def validate_task(context: Any) -> dict[str, Any]:
    """Check the trigger params against the desk and the plans before anything is sent."""
    from airflow.sdk.exceptions import AirflowFailException

    from incident_ops.airflow.hooks import ServiceDeskHook
    from incident_ops.config import config_dir, load_contacts
    from incident_ops.desk.port import DeskError, TicketNotFound
    from incident_ops.policy.emergency import (
        PLANS_DIR,
        PlanUnavailable,
        assess_coverage,
        load_plans,
    )

    params = context["params"]
    info = run_info(context)
    contacts = load_contacts()
    book = load_plans(config_dir() / PLANS_DIR, contacts)
    for problem in book.problems:  # other systems' broken plans are reported, not fatal
        log.warning("contingency plan problem: %s", problem)
    try:
        try:
            plan = book.get(str(params["system"]))
        except PlanUnavailable as exc:
            raise flow.EmergencyParamError("system", str(exc)) from exc
        with ServiceDeskHook(DESK_CONN) as hook:
            desk = hook.get_desk()
            try:
                ticket = desk.get(str(params["ticket_id"]))
            except TicketNotFound as exc:
                raise flow.EmergencyParamError(
                    "ticket_id", f"no ticket {params['ticket_id']} in the desk") from exc
            flow.check_ticket(ticket)
            reporter = str(params["reporter"])
            desk_email = None
            if "@" not in reporter and not contacts.people.get(reporter) \
                    and not contacts.by_desk_user(reporter):
                try:
                    desk_email = desk.user_email(reporter)
                except DeskError:
                    desk_email = None
            reporter_email = flow.reporter_address(reporter, contacts, desk_email)
    except flow.EmergencyParamError as exc:
        # A wrong param does not get better with retries: fail the run at once, name the field.
        raise AirflowFailException(f"Invalid {exc}") from exc
    continuation = params.get("continuation") or None
    coverage = assess_coverage(plan, str(params["symptoms"]), str(params["impact"]))
    brief = flow.make_brief(
        ticket, params, plan, coverage, contacts, reporter_email=reporter_email,
        emergency_id=str(continuation["emergency_id"]) if continuation else info.run_id,
        run_id=info.run_id, now=info.now, continuation=continuation)
    brief["started_by"] = getattr(context["dag_run"], "triggering_user_name", None) or "—"
    log.info("emergency %s on #%s (%s, %s): plan %s, suggestion: %s", brief["emergency_id"],
             ticket.id, params["system"], params["impact"], plan.file, coverage.reason)
    return brief


def notify_start_task(context: Any) -> dict[str, Any]:
    """101.1: convene the team, inform the provincial centre leaders and the group."""
    brief = brief_of(context)
    with Step(brief, context, "101.1") as step:
        to = [*brief["to"]["team"], *brief["to"]["leaders"], *brief["to"]["group_hq"],
              *brief["to"]["inform"]]
        k = flow.key(brief, "hq-start")
        ctx = mail_context(brief, step.info.run_id, coverage=brief["coverage"],
                           continuation=bool(brief["round_offset"]))
        email = mail("emergency_start", to, ctx, k)
        sms = text_message("emergency_start", brief["to"]["team_phones"], ctx, f"{k}:sms")
        sent = step.once(k, f"应急启动，已通知应急小组、省中心领导与集团公司 / emergency "
                            f"started; team, provincial leaders and the group informed "
                            f"({len(set(to))} addresses, {len(sms.to)} SMS)", [email], [sms])
    return {"sent": sent, "events": [event("101.1", "automation",
                                           f"首报已发送 / initial report sent to {len(set(to))}"
                                           f" addresses, SMS to {len(sms.to)} team members")]}


def start_route_task(context: Any, first_round: str) -> str:
    """A continuation run goes straight back to 101.4; a new emergency asks 101.2 first."""
    brief = brief_of(context)
    return first_round if brief["round_offset"] else COVERED


def announce_plan_task(context: Any) -> dict[str, Any]:
    """101.2 → 101.3: the team follows the plan; the group hears which route was taken."""
    brief = brief_of(context)
    with Step(brief, context, "101.3") as step:
        hq_keypoint(step, flow.HQ_ROUTE, "按预案处置 / the contingency plan is followed (101.3)",
                    flow.ROUTE_PLAN)
    return {"events": [event("101.3", "automation", "按预案处置 / plan route taken")]}


def engage_vendors_task(context: Any, k: int) -> dict[str, Any]:
    """101.4: the team organises the vendors to analyse it and build a solution (round k)."""
    brief = brief_of(context)
    n = int(brief["round_offset"]) + k
    rounds, _ = collect_rounds(context, brief)
    history = history_markdown(rounds)
    with Step(brief, context, "101.4") as step:
        hq_keypoint(step, flow.HQ_ROUTE, "组织厂商分析处理 / vendors engaged (101.4)",
                    flow.ROUTE_VENDORS)
        k_vendors = flow.key(brief, "vendors", n)
        ctx = mail_context(brief, step.info.run_id, round=n, rounds=[r.to_dict() for r in rounds])
        email = mail("emergency_vendors", brief["to"]["vendors"] or brief["to"]["team"], ctx,
                     k_vendors, cc=brief["to"]["team"])
        step.once(k_vendors, f"第 {n} 轮：已组织厂商分析 / round {n}: vendors engaged "
                             f"({', '.join(brief['to']['vendors']) or 'team only'})", [email])
    return {"round": n, "history_md": history,
            "events": [event("101.4", "automation", f"第 {n} 轮，已通知厂商 / round {n}: "
                                                    "vendors notified")]}


def carry_out_task(context: Any, k: int) -> dict[str, Any]:
    """101.4 after approval: tell the group, raise the emergency change, ask the group centre."""
    brief = brief_of(context)
    n = int(brief["round_offset"]) + k
    proposed = answer_of(context, round_task(k, "propose_solution"), "101.4", flow.Q_SOLUTION)
    if proposed is None:
        raise RuntimeError(f"round {k}: no proposed solution to carry out")
    approvals = [a for a in (
        answer_of(context, round_task(k, "approve_team_lead"), "101.4", flow.Q_APPROVE_LEAD),
        answer_of(context, round_task(k, "approve_leader"), "101.4", flow.Q_APPROVE_LEADER))
        if a]
    solution = flow.Solution.from_params(proposed.params)
    who = ", ".join(f"{a.by}" for a in approvals)
    events = []
    with Step(brief, context, "101.4") as step:
        hq_keypoint(step, flow.HQ_APPROVED, f"第 {n} 轮方案已批准 / round {n} solution approved "
                    f"by {who}: {solution.text}", n, solution=solution)
        change_id = None
        if solution.needs_change_request:
            draft = flow.change_request_draft(brief, n, solution, approvals)
            change_id = step.desk.create(draft)  # once per key: a retry finds the same ticket
            step.once(flow.key(brief, "change-noted", n),
                      f"紧急变更单 #{change_id} 已创建 / emergency change request #{change_id} "
                      "raised (101.4)")
            events.append(event("101.4", "automation", f"紧急变更 / emergency change "
                                                       f"#{change_id} raised"))
        if solution.group_support_needed:
            k_group = flow.key(brief, "group-support", n)
            email = mail("emergency_group_support", brief["to"]["group_support"],
                         mail_context(brief, step.info.run_id, round=n, solution=solution), k_group,
                         cc=brief["to"]["leaders"])
            step.once(k_group, f"已请求集团中心支持 / group centre asked to step in: "
                               f"{solution.group_request or solution.text}", [email])
            events.append(event("101.4", "automation", "已请求集团中心支持 / group centre asked"))
    return {"round": n, "change_request": change_id,
            "group_asked": solution.group_support_needed, "events": events}


def approval_outcome_task(context: Any, k: int, lifted_task: str, next_task: str) -> str:
    """Approved and carried out → ask whether it is lifted; rejected → the next round."""
    done = context["ti"].xcom_pull(task_ids=round_task(k, "carry_out"))
    rejected = [a for a in (
        answer_of(context, round_task(k, "approve_team_lead"), "101.4", flow.Q_APPROVE_LEAD),
        answer_of(context, round_task(k, "approve_leader"), "101.4", flow.Q_APPROVE_LEADER))
        if a and a.first == flow.REJECT]
    if rejected or not done:
        log.info("round %d: solution rejected by %s; a new round", k,
                 ", ".join(a.by for a in rejected) or "?")
        return next_task
    return lifted_task


def escalate_task(context: Any) -> dict[str, Any]:
    """Every round of this run done and not lifted: tell management, continue in a new run."""
    brief = brief_of(context)
    rounds, _ = collect_rounds(context, brief)
    done = max((r.number for r in rounds), default=0)
    with Step(brief, context, "101.5") as step:
        k = flow.key(brief, "escalate", done)
        email = mail("emergency_escalation", [*brief["to"]["leaders"], *brief["to"]["group_hq"]],
                     mail_context(brief, step.info.run_id, rounds=[r.to_dict() for r in rounds],
                                  done=done), k, cc=brief["to"]["team"])
        step.once(k, f"{done} 轮后仍未解除，转入续跑 / not lifted after {done} rounds; "
                     "continuing in a new run", [email])
    continuation = {"emergency_id": brief["emergency_id"], "rounds_done": done,
                    "started_at": brief["started_at"],
                    "history": [r.to_dict() for r in rounds]}
    # Deterministic, so a retried trigger finds the run it already started.
    base = re.sub(r"[^A-Za-z0-9_.~:+-]", "_", str(brief["emergency_id"]))[:180]
    return {"conf": {**brief["params"], "continuation": continuation},
            "run_id": f"{base}.from-round-{done + 1}"}
