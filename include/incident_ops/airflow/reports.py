"""The manager-report DAGs' four tasks: fetch, compute, render, send.

Each returns a small dict for XCom (the period, paths, a few numbers); the tickets, the
KPIs and the rendered files live in the period's archive folder (``reports.archive``).
Send mails once per period: after a successful send it writes ``sent.json``, and a later
run (a retry, a re-run, a backfill) finds it and does not mail again unless the run was
triggered with ``resend``.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any

from incident_ops.airflow.runtime import run_info

log = logging.getLogger(__name__)


def _settings() -> Any:
    from incident_ops.reports.settings import load_report_settings

    return load_report_settings()


def _archive(period: dict[str, str]) -> Any:
    from incident_ops.config import reports_dir
    from incident_ops.reports.archive import ReportArchive
    from incident_ops.reports.periods import Period

    return ReportArchive(reports_dir(), Period.from_dict(period))


def _sla() -> Any:
    from incident_ops.config import ConfigError, load_yaml
    from incident_ops.policy.escalation import SlaPolicy

    try:
        return SlaPolicy.from_dict(load_yaml("sla.yaml"))
    except ConfigError as exc:
        if "file not found" not in str(exc):
            raise  # a broken sla.yaml is an error; only a missing one means "no targets"
        log.warning("no sla.yaml: SLA compliance is left out of the report")
        return None


def report_period(kind: str, context: Any) -> Any:
    """The ``date`` param's period if given, else the last one complete at the run's time."""
    from incident_ops.reports.periods import last_complete, period_containing

    tz = _settings().timezone
    wanted = (context.get("params") or {}).get("date")
    if wanted:
        return period_containing(kind, date.fromisoformat(str(wanted)), tz)
    return last_complete(kind, run_info(context).now, tz)


def fetch_task(kind: str, context: Any, *, conn_id: str = "servicedesk_default"
               ) -> dict[str, Any]:
    from incident_ops.airflow.hooks import ServiceDeskHook
    from incident_ops.pipelines.reports import fetch

    period = report_period(kind, context)
    archive = _archive(period.to_dict())
    log.info("%s report for %s (%s .. %s)", kind, period.label, period.start.isoformat(),
             period.end.isoformat())
    with ServiceDeskHook(conn_id) as hook:
        result = fetch(hook.get_desk(), archive)
    return {"period": period.to_dict(), **result}


def compute_task(fetched: dict[str, Any]) -> dict[str, Any]:
    from incident_ops.config import load_vocabulary
    from incident_ops.pipelines.reports import compute, kpi_settings

    archive = _archive(fetched["period"])
    kpis = compute(archive, kpi_settings(_settings(), load_vocabulary(), _sla()))
    keys = ("created", "resolved", "closed", "sla_pct", "response_pct", "reopen_rate_pct",
            "urgent", "major")
    headline = {k: kpis.headline[k] for k in keys}
    log.info("KPIs %s %s: %s", archive.period.kind, archive.period.label, headline)
    return {"period": fetched["period"], "kpis": str(archive.kpis), "headline": headline,
            "empty": kpis.is_empty}


def render_task(computed: dict[str, Any], context: Any) -> dict[str, Any]:
    from incident_ops.config import load_vocabulary
    from incident_ops.pipelines.reports import kpi_settings, load_kpis, render
    from incident_ops.reports.labels import Labels

    settings = _settings()
    archive = _archive(computed["period"])
    language = (context.get("params") or {}).get("language") or settings.language
    info = run_info(context)
    vocab = load_vocabulary()
    result = render(archive, load_kpis(archive), settings, kpi_settings(settings, vocab, _sla()),
                    Labels(vocab, language), dag_id=info.dag_id, run_id=info.run_id)
    log.info("rendered %s: %s", result["folder"], result["subject"])
    return {"period": computed["period"], **result}


def send_task(rendered: dict[str, Any], context: Any) -> dict[str, Any]:
    from incident_ops.airflow.senders import send_email
    from incident_ops.config import load_contacts
    from incident_ops.pipelines.reports import prepare_email

    settings = _settings()
    archive = _archive(rendered["period"])
    resend = bool((context.get("params") or {}).get("resend"))
    marker = archive.sent()
    if marker is not None and not resend:
        if marker.get("kpis_digest") != rendered["kpis_digest"]:
            log.warning("the numbers changed since this report was mailed on %s; trigger "
                        "with resend=true to mail the new version", marker.get("sent_at"))
        log.info("already mailed on %s as %s; not sending again (resend=false)",
                 marker.get("sent_at"), marker.get("message_id"))
        return {"sent": False, "reason": "already sent", "marker": str(archive.sent_marker)}
    email = prepare_email(archive, settings, load_contacts())
    receipt = send_email(email, conn_id=settings.smtp_conn_id)
    info = run_info(context)
    archive.write_json(archive.sent_marker, {
        "sent_at": datetime.now(UTC).isoformat(), "message_id": receipt.message_id,
        "key": email.key, "to": list(email.to), "cc": list(email.cc),
        "accepted": list(receipt.accepted), "refused": list(receipt.refused),
        "kpis_digest": rendered["kpis_digest"], "run_id": info.run_id, "resend": resend})
    return {"sent": True, "message_id": receipt.message_id, "to": len(email.to) + len(email.cc)}
