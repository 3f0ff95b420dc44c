"""101.5-101.6: the emergency lifted, its report, the Major Incident Report, the problem.

The task bodies of the aftermath (``steps`` has what every step shares).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from incident_ops.airflow.emergency.ids import round_task, rounds_in
from incident_ops.airflow.emergency.steps import (
    CLOSED_ASSET,
    NOTE_TASKS,
    REPORT_DIR,
    brief_of,
    carry,
    collect_rounds,
    created,
    event,
    now,
    settle,
)
from incident_ops.policy import emergency as em

if TYPE_CHECKING:
    from incident_ops.airflow.bootstrap import Services
    from incident_ops.artefacts import ArtefactStore

log = logging.getLogger(__name__)


def _notes(context: Any) -> list[Any]:
    from incident_ops.policy.emergency_records import Event

    ids = list(NOTE_TASKS)
    for k in range(1, rounds_in(context["dag"].task_ids) + 1):
        ids += [round_task(k, "engage_vendors"), round_task(k, "carry_out")]
    notes = []
    for task_id in ids:
        if task_id not in context["dag"].task_ids:
            continue
        value = context["ti"].xcom_pull(task_ids=task_id)
        for e in (value or {}).get("events", []) if isinstance(value, dict) else []:
            notes.append(Event(datetime.fromisoformat(e["at"]), e["step"], e["who"], e["what"]))
    return notes


def announce_lifted_task(s: Services) -> dict[str, Any]:
    """101.5 → 101.6: the emergency is lifted; the group hears it at once; the recovery time
    typed when lifting goes onto the incident."""
    brief = brief_of(s.context)
    rounds, _ = collect_rounds(s.context, brief)
    lifted = em.lifted_answer(rounds)
    if lifted is None:
        raise RuntimeError("aftermath reached without a 'lifted' answer")
    incident = s.desk.get(brief.incident_id)
    carry(s, brief, em.decide_lifted(brief, s.info.run_id, lifted, incident, brief.tz),
          "announce_lifted")
    return {"lifted": lifted.to_dict(),
            "events": [event("101.5", "automation", "集团公司已获解除通报 / group HQ told it is "
                                                     "lifted")]}


def report_task(s: Services) -> dict[str, Any]:
    """101.6: the report, written to the artefact store and mailed to reporter, leaders and
    group."""
    from incident_ops.airflow.object_store import artefact_store
    from incident_ops.reports.emergency_report import report_context, write_report

    brief = brief_of(s.context)
    rounds, decisions = collect_rounds(s.context, brief)
    ctx = report_context(brief, rounds, decisions, _notes(s.context), generated_at=now(),
                         tz=brief.tz)
    store = artefact_store()
    paths = write_report(ctx, store, f"{REPORT_DIR}/{brief.started_at:%Y-%m-%d}")
    paths.update(report_pdf(store, paths))
    log.info("aftermath report: %s (print: %s, PDF: %s)", paths["html"], paths["print"],
             paths.get("pdf") or "none")
    mailed = {k: v for k, v in ctx.items() if k != "plan"}
    carry(s, brief, em.decide_report(brief, s.info.run_id, mailed, paths), "report")
    return {"paths": paths, "number": ctx["number"], "major": brief.major,
            "rounds": [r.to_dict() for r in rounds]}


def report_pdf(store: ArtefactStore, paths: dict[str, str]) -> dict[str, str]:
    """The report as PDF, printed from its printable page and stored beside it
    (``reports.pdf.store_pdf``); without a browser (or when it fails) the report goes out as
    HTML only, and the log says why."""
    from incident_ops.reports.pdf import PdfUnavailable, store_pdf

    try:
        return {"pdf": store_pdf(store, paths["print"])}
    except PdfUnavailable as exc:
        log.warning("no PDF of the report: %s", exc)
        return {}


def major_report_task(s: Services, report: dict[str, Any]) -> str | None:
    """101.6: a major emergency's 《重大事件报告》 goes into the desk, report attached."""
    brief = brief_of(s.context)
    if not brief.major:
        log.info("impact %s: no Major Incident Report needed", brief.impact)
        return None
    rounds = [em.Round.from_dict(r) for r in report["rounds"]]
    plan = em.decide_major_report(brief, s.info.run_id, rounds, report, report["paths"])
    return created(s, carry(s, brief, plan, "major_incident_report"), plan)


def problem_task(s: Services, report: dict[str, Any]) -> str | None:
    """101.6: a problem ticket with the handling details, to the problem manager."""
    brief = brief_of(s.context)
    rounds = [em.Round.from_dict(r) for r in report["rounds"]]
    plan = em.decide_problem(brief, s.info.run_id, rounds)
    return created(s, carry(s, brief, plan, "problem_ticket"), plan)


def closed_task(context: Any, report: dict[str, Any], problem_id: str | None,
                major_report_id: str | None) -> dict[str, Any]:
    """Settle what the run still owes, then announce the closed emergency to whoever
    listens (an Airflow asset event)."""
    from airflow.sdk import Asset

    from incident_ops.airflow.bootstrap import services

    brief = brief_of(context)
    with services(context) as s:
        settle(s, brief)
    extra = {"incident_id": brief.incident_id, "emergency_id": brief.emergency_id,
             "system": brief.system, "impact": brief.impact, "problem_id": problem_id,
             "major_report_id": major_report_id, "report": report["paths"]["html"],
             "rounds": len(report["rounds"]), "dry_run": brief.dry_run}
    context["outlet_events"][Asset(CLOSED_ASSET)].extra = extra
    return extra
