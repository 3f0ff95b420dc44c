"""Plan tasks of urgent_incidents (100.5) and incident_queue_monitor (100.8), and the snapshot."""

from __future__ import annotations

import logging
import os
from typing import Any

from incident_ops.airflow.pipeline import fetch_clock, planned, read_watermark
from incident_ops.airflow.runtime import AirflowNotifier, run_info

log = logging.getLogger(__name__)

MONITOR_WATERMARK = "incident_queue_monitor_watermark"


def airflow_url() -> str:
    """Where ops reach Airflow, for the ready-made emergency commands in urgent mails."""
    return os.environ.get("INCIDENT_OPS_AIRFLOW_URL", "http://127.0.0.1:8080").rstrip("/")


def plan_urgent(context: Any, *, conn_id: str = "servicedesk_default") -> dict[str, Any]:
    from incident_ops.airflow.hooks import ServiceDeskHook
    from incident_ops.config import load_contacts, load_vocabulary
    from incident_ops.pipelines.monitor import fetch_unnotified_urgent
    from incident_ops.policy.urgent import decide_urgent

    info = run_info(context)
    with ServiceDeskHook(conn_id) as hook:
        tickets = fetch_unnotified_urgent(hook.get_desk())
    plan = decide_urgent(tickets, load_vocabulary(), load_contacts(), info.now, info.run_id,
                         airflow_url())
    return planned(plan, tickets, now=info.now)


def sla_policy() -> Any:
    from incident_ops.config import load_yaml
    from incident_ops.policy.escalation import SlaPolicy

    return SlaPolicy.from_dict(load_yaml("sla.yaml"))


def plan_monitor(context: Any, *, conn_id: str = "servicedesk_default") -> dict[str, Any]:
    from incident_ops.airflow.hooks import ServiceDeskHook
    from incident_ops.config import load_contacts, load_vocabulary
    from incident_ops.pipelines.monitor import fetch_monitor_batch
    from incident_ops.policy.escalation import decide_escalation

    info = run_info(context)
    since = read_watermark(MONITOR_WATERMARK)
    started = fetch_clock()
    with ServiceDeskHook(conn_id) as hook:
        tickets = fetch_monitor_batch(hook.get_desk(), since, info.now)
    plan = decide_escalation(tickets, sla_policy(), load_vocabulary(), load_contacts(),
                             info.now, info.run_id)
    for warning in plan.warnings:  # also on the run's plan report
        log.warning("SLA calendar: %s", warning)
    return planned(plan, tickets, now=info.now, read=tickets,
                   watermark_variable=MONITOR_WATERMARK, watermark=since,
                   fetch_started=started)


def snapshot_task(context: Any, *, resend: bool = False,
                  conn_id: str = "servicedesk_default") -> dict[str, Any]:
    from incident_ops.airflow.hooks import ServiceDeskHook
    from incident_ops.config import load_contacts, load_vocabulary, load_yaml, reports_dir
    from incident_ops.notify.messages import Email
    from incident_ops.pipelines.monitor import fetch_open
    from incident_ops.reports.plan_report import safe_name
    from incident_ops.reports.queue_snapshot import render_snapshot, take_snapshot

    info = run_info(context)
    with ServiceDeskHook(conn_id) as hook:
        tickets = fetch_open(hook.get_desk())
    snap = take_snapshot(tickets, sla_policy(), load_vocabulary(), info.now)
    subject, html = render_snapshot(snap, info.run_id)
    folder = reports_dir() / "queue_snapshot" / info.now.strftime("%Y-%m-%d")
    folder.mkdir(parents=True, exist_ok=True)
    page = folder / f"{safe_name(info.run_id)}.html"
    page.write_text(html, encoding="utf-8")
    log.info("snapshot: %d open, %d breached, %d at risk -> %s", snap.total,
             len(snap.breached), len(snap.at_risk), page)
    for warning in snap.warnings:  # also on the page
        log.warning("SLA calendar: %s", warning)
    sent_marker = page.with_suffix(".sent")
    roles = (load_yaml("sla.yaml").get("snapshot") or {}).get("to", ["incident_manager"])
    contacts = load_contacts()
    to = tuple(p.email for role in roles for p in contacts.role(role) if p.email)
    if sent_marker.exists() and not resend:
        log.info("snapshot of this run already mailed (%s); not sending again", sent_marker)
    elif to:
        AirflowNotifier().send_email(Email(to=to, subject=subject, html=html,
                                           key=f"snapshot:{info.dag_id}:{info.run_id}"))
        sent_marker.write_text(info.now.isoformat(), encoding="utf-8")
    return {"page": str(page), "open": snap.total, "breached": len(snap.breached),
            "at_risk": len(snap.at_risk), "mailed_to": list(to), "warnings": snap.warnings}
