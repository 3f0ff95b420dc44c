"""Task helpers of 101.5 (lifted) and 101.6 (aftermath) of the ``emergency_response`` DAG.

In order, one task each so that a retry repeats one thing only: tell the group it is
lifted; render the report, write it and mail it to the reporter, the leaders and the
group; the Major Incident Report ticket (major impact only) with the report attached; the
problem ticket for the problem manager; the asset event that announces the closed
emergency. Tickets are created once per key by the desk; mails and attachments once per
key recorded on the ticket.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from incident_ops.airflow.emergency import (
    Step,
    brief_of,
    collect_rounds,
    event,
    hq_keypoint,
    mail,
    mail_context,
    now,
    tz_name,
)
from incident_ops.airflow.emergency_tasks import round_task, rounds_in
from incident_ops.notify.messages import Attachment
from incident_ops.policy import emergency_flow as flow

log = logging.getLogger(__name__)

CLOSED_ASSET = "incident-ops://emergency/closed"
REPORT_DIR = "emergency_response"
# Tasks whose XCom carries timeline notes (``events``), besides the rounds' tasks.
NOTE_TASKS = ("notify_start", "plan.announce_route", "aftermath.announce_lifted")


def _notes(context: Any) -> list[flow.Event]:
    ids = list(NOTE_TASKS)
    for k in range(1, rounds_in(context["dag"].task_ids) + 1):
        ids += [round_task(k, "engage_vendors"), round_task(k, "carry_out")]
    notes = []
    for task_id in ids:
        if task_id not in context["dag"].task_ids:
            continue
        value = context["ti"].xcom_pull(task_ids=task_id)
        for e in (value or {}).get("events", []) if isinstance(value, dict) else []:
            notes.append(flow.Event(datetime.fromisoformat(e["at"]), e["step"], e["who"],
                                    e["what"]))
    return notes


def announce_lifted_task(context: Any) -> dict[str, Any]:
    """101.5 → 101.6: the emergency is lifted; the group hears it at once."""
    brief = brief_of(context)
    rounds, _ = collect_rounds(context, brief)
    lifted = flow.lifted_answer(rounds)
    if lifted is None:
        raise RuntimeError("aftermath reached without a 'lifted' answer")
    recovered = lifted.params.get("recovered_at") or "—"
    with Step(brief, context, "101.5") as step:
        hq_keypoint(step, flow.HQ_LIFTED, f"应急已解除 / emergency lifted ({lifted.by}, "
                    f"{lifted.at:%Y-%m-%d %H:%M} UTC); 业务恢复 / business recovered: {recovered}"
                    if lifted.at else "应急已解除 / emergency lifted")
        record_recovery(step, str(lifted.params.get("recovered_at") or ""))
    return {"lifted": lifted.to_dict(),
            "events": [event("101.5", "automation", "集团公司已获解除通报 / group HQ told it is "
                                                     "lifted")]}


def record_recovery(step: Step, typed: str) -> None:
    """The business recovery time from the lifted form goes onto the incident (100.6.4 asks
    for it before a fault may close), once; a time already on the ticket is kept."""
    k = flow.key(step.brief, "recovery-time")
    ticket = step.desk.get(step.incident_id)  # one read for both: done already? time set?
    if k in ticket.automation_keys:
        return
    moment = flow.recovery_time(typed, tz_name())
    current = ticket.recovered_at
    if moment is None:
        step.mark(k, f"解除时未给出可识别的业务恢复时间（{typed or '空'}），请在工单上填写 / no "
                     f"business recovery time understood from the lifted form ({typed!r}, "
                     "expected YYYY-MM-DD HH:MM): set Business Recovery Time on the ticket",
                  step.incident_id)
    elif current is not None:
        step.mark(k, f"工单已有业务恢复时间 {current:%Y-%m-%d %H:%M} UTC，保留；解除表单为 "
                     f"{typed} / the ticket already holds a recovery time, kept; the lifted "
                     f"form said {typed}", step.incident_id)
    else:
        step.mark(k, f"业务恢复时间已记录 / business recovery time recorded: {typed} "
                     f"({moment:%Y-%m-%d %H:%M} UTC)", step.incident_id,
                  fields={"recovered_at": moment})


def report_task(context: Any) -> dict[str, Any]:
    """101.6: the report, written under reports/ and mailed to reporter, leaders and group."""
    from incident_ops.config import reports_dir
    from incident_ops.reports.emergency_report import report_context, write_report

    brief = brief_of(context)
    rounds, decisions = collect_rounds(context, brief)
    ctx = report_context(brief, rounds, decisions, _notes(context), generated_at=now(),
                         tz=tz_name())
    started = datetime.fromisoformat(brief["started_at"])
    paths = write_report(ctx, reports_dir() / REPORT_DIR / f"{started:%Y-%m-%d}")
    log.info("aftermath report: %s (print: %s)", paths["html"], paths["print"])
    with Step(brief, context, "101.6") as step:
        k = flow.key(brief, "report-mail")
        email = mail("emergency_report", [brief["to"]["reporter"], *brief["to"]["leaders"],
                                          *brief["to"]["group_hq"]],
                     mail_context(brief, step.info.run_id, report=ctx), k)
        email = replace(email, attachments=(
            Attachment(Path(paths["html"]).name, Path(paths["html"]).read_bytes(), "text/html"),
            Attachment(Path(paths["print"]).name, Path(paths["print"]).read_bytes(),
                       "text/html")))
        step.once(k, f"善后报告已发送报告人、领导与集团公司 / aftermath report sent to the "
                     f"reporter, the leaders and the group: {paths['html']}", [email])
    return {"paths": paths, "number": ctx["number"], "major": brief["major"],
            "rounds": [r.to_dict() for r in rounds]}


def major_report_task(context: Any, report: dict[str, Any]) -> str | None:
    """101.6: a major emergency's 《重大事件报告》 goes into the desk, report attached."""
    brief = brief_of(context)
    if not brief["major"]:
        log.info("impact %s: no Major Incident Report needed", brief["params"]["impact"])
        return None
    rounds = [flow.Round.from_dict(r) for r in report["rounds"]]
    draft = flow.major_report_draft(brief, rounds, flow.lifted_answer(rounds))
    with Step(brief, context, "101.6") as step:
        ticket_id = step.desk.create(draft)  # RefersTo the incident, from the draft
        k_attach = flow.key(brief, "major-report-attached")
        if not step.done(k_attach, ticket_id):
            for kind in ("html", "print"):
                path = Path(report["paths"][kind])
                step.desk.attach(ticket_id, path.name, path.read_bytes(), "text/html",
                                 note=f"《重大事件报告》 {report['number']} ({kind})")
            step.mark(k_attach, f"报告已附 / report attached: {report['number']}", ticket_id)
        step.once(flow.key(brief, "major-report-noted"),
                  f"《重大事件报告》已提交 / Major Incident Report submitted: #{ticket_id}")
    return ticket_id


def problem_task(context: Any, report: dict[str, Any]) -> str:
    """101.6: a problem ticket with the handling details, to the problem manager."""
    brief = brief_of(context)
    rounds = [flow.Round.from_dict(r) for r in report["rounds"]]
    draft = flow.problem_draft(brief, rounds, flow.lifted_answer(rounds))
    with Step(brief, context, "101.6") as step:
        ticket_id = step.desk.create(draft)
        step.once(flow.key(brief, "problem-noted"),
                  f"问题单 #{ticket_id} 已提交问题经理 {brief.get('problem_manager') or ''} / "
                  f"problem #{ticket_id} handed to the problem manager")
    return ticket_id


def closed_task(context: Any, report: dict[str, Any], problem_id: str,
                major_report_id: str | None) -> dict[str, Any]:
    """Announce the closed emergency to whoever listens (an Airflow asset event)."""
    brief = brief_of(context)
    from airflow.sdk import Asset

    extra = {"incident_id": brief["incident"]["id"], "emergency_id": brief["emergency_id"],
             "system": brief["params"]["system"], "impact": brief["params"]["impact"],
             "problem_id": problem_id, "major_report_id": major_report_id,
             "report": report["paths"]["html"], "rounds": len(report["rounds"])}
    context["outlet_events"][Asset(CLOSED_ASSET)].extra = extra
    return extra

