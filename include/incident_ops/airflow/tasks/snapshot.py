"""incident_queue_snapshot's task (100.8.1): the open queue for the incident manager.

The page is rewritten on every run, in the artefact store; the mail goes out once per run
(``engine.once``: its ledger is the ``.sent`` object beside the page, written after the
send; ``resend`` mails again), while the scope's desk lease is held, so a retried or
duplicated task never mails twice. A failed send leaves no record: Airflow's retry sends it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from incident_ops.airflow.bootstrap import Services

log = logging.getLogger(__name__)

SCOPE = "incident_queue_snapshot"


def snapshot_task(s: Services) -> dict[str, Any]:
    from incident_ops.airflow.bootstrap import lease_ttl
    from incident_ops.airflow.object_store import artefact_store
    from incident_ops.engine import Lease, holder_id
    from incident_ops.engine.once import StoreLedger, once
    from incident_ops.notify.messages import Email
    from incident_ops.pipelines.open_queue import fetch_open
    from incident_ops.reports.plan_report import safe_name
    from incident_ops.reports.queue_snapshot import render_snapshot, take_snapshot

    info = s.info
    tickets = fetch_open(s.desk)
    snap = take_snapshot(tickets, s.config.sla, s.config.vocabulary, info.now)
    subject, html = render_snapshot(snap, info.run_id)
    store = artefact_store()
    stem = f"queue_snapshot/{info.now:%Y-%m-%d}/{safe_name(info.run_id)}"
    page = store.write_bytes(f"{stem}.html", html.encode("utf-8"))
    log.info("snapshot: %d open, %d breached, %d at risk -> %s", snap.total,
             len(snap.breached), len(snap.at_risk), store.url(page))
    for warning in snap.warnings:  # also on the page
        log.warning("SLA calendar: %s", warning)
    ledger = StoreLedger(store, f"{stem}.sent")
    roles = (s.config.yaml("sla.yaml").get("snapshot") or {}).get("to", ["incident_manager"])
    to = tuple(p.email for role in roles for p in s.config.contacts.role(role) if p.email)
    resend = bool(s.params.get("resend"))
    key = f"snapshot:{info.dag_id}:{info.run_id}"

    def mail() -> dict[str, Any]:
        s.notifier.send_email(Email(to=to, subject=subject, html=html, key=key))
        return {"sent_at": info.now.isoformat(), "key": key, "to": list(to)}

    with Lease(s.desk, SCOPE, holder_id(info.run_id, "snapshot"), ttl=lease_ttl()):
        if not to:
            log.warning("snapshot: sla.yaml's snapshot.to roles have no e-mail address; "
                        "the page is written, no mail sent")
        elif not once(ledger, mail, again=resend).acted:
            log.info("snapshot of this run already mailed (%s); not sending again",
                     ledger.where)
    return {"page": page, "open": snap.total, "breached": len(snap.breached),
            "at_risk": len(snap.at_risk), "mailed_to": list(to), "warnings": snap.warnings}
