"""The manager-report DAGs' four tasks: fetch, compute, render, send.

Each returns a small dict for XCom (the period, paths, a few numbers); the tickets, the
KPIs and the rendered files live in the period's archive in the artefact store
(``reports.archive``, ``airflow.object_store``).
Send mails once per period (``engine.once``): after a successful send it records the mail in
``sent.json``,
and a later run (a retry, a re-run, a backfill) finds it and does not mail again unless the
run was triggered with ``resend``. Every mail sent for a period has its own Message-ID and
replies to the period's first, so a mail client shows a resend (or the other language)
as a new message in the same conversation.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from incident_ops.airflow.bootstrap import Services
    from incident_ops.policy.escalation import SlaPolicy
    from incident_ops.reports.archive import ReportArchive
    from incident_ops.reports.periods import Period

log = logging.getLogger(__name__)


def _archive(period: dict[str, str]) -> ReportArchive:
    from incident_ops.airflow.object_store import artefact_store
    from incident_ops.reports.archive import ReportArchive
    from incident_ops.reports.periods import Period

    return ReportArchive(artefact_store(), Period.from_dict(period))


def _sla(s: Services) -> SlaPolicy | None:
    from incident_ops.config import ConfigError

    try:
        return s.config.sla
    except ConfigError as exc:
        if "file not found" not in str(exc):
            raise  # a broken sla.yaml is an error; only a missing one means "no targets"
        log.warning("no sla.yaml: SLA compliance is left out of the report")
        return None


def report_period(kind: str, s: Services) -> Period:
    """The ``date`` param's period if given, else the last one complete at the run's time."""
    from incident_ops.reports.periods import last_complete, period_containing

    tz = s.config.reports.timezone
    wanted = s.params.get("date")
    if wanted:
        return period_containing(kind, date.fromisoformat(str(wanted)), tz)
    return last_complete(kind, s.info.now, tz)


def fetch_task(kind: str, s: Services) -> dict[str, Any]:
    from incident_ops.pipelines.reports import fetch

    period = report_period(kind, s)
    archive = _archive(period.to_dict())
    log.info("%s report for %s (%s .. %s)", kind, period.label, period.start.isoformat(),
             period.end.isoformat())
    result = fetch(s.desk, archive)
    return {"period": period.to_dict(), **result}


def compute_task(fetched: dict[str, Any], s: Services) -> dict[str, Any]:
    from incident_ops.pipelines.reports import compute, kpi_settings

    archive = _archive(fetched["period"])
    kpis = compute(archive, kpi_settings(s.config.reports, s.config.vocabulary, _sla(s)))
    keys = ("created", "resolved", "closed", "sla_pct", "response_pct", "reopen_rate_pct",
            "urgent", "major")
    headline = {k: kpis.headline[k] for k in keys}
    log.info("KPIs %s %s: %s", archive.period.kind, archive.period.label, headline)
    return {"period": fetched["period"], "kpis": archive.url(archive.kpis), "headline": headline,
            "empty": kpis.is_empty}


def render_task(computed: dict[str, Any], s: Services) -> dict[str, Any]:
    from incident_ops.pipelines.reports import kpi_settings, load_kpis, render
    from incident_ops.reports.labels import Labels

    settings = s.config.reports
    archive = _archive(computed["period"])
    language = s.params.get("language") or settings.language
    vocab = s.config.vocabulary
    result = render(archive, load_kpis(archive), settings, kpi_settings(settings, vocab, _sla(s)),
                    Labels(vocab, language), dag_id=s.info.dag_id, run_id=s.info.run_id)
    log.info("rendered %s: %s", result["folder"], result["subject"])
    return {"period": computed["period"], **result}


def send_task(rendered: dict[str, Any], s: Services) -> dict[str, Any]:
    """Mail the period's report once (under the period's desk lease, so two runs of the same
    period at once never both mail it); a failed send leaves no record: the retry sends."""
    from incident_ops.airflow.bootstrap import lease_ttl
    from incident_ops.engine import Lease, holder_id

    scope = f"report:{rendered['period']['kind']}:{rendered['period']['first_day']}"
    with Lease(s.desk, scope, holder_id(s.info.run_id, "send"), ttl=lease_ttl()):
        return _send_once(rendered, s)


def _send_once(rendered: dict[str, Any], s: Services) -> dict[str, Any]:
    from incident_ops.airflow.provider.senders import send_email
    from incident_ops.engine.once import StoreLedger, once
    from incident_ops.pipelines.reports import prepare_email

    settings = s.config.reports
    archive = _archive(rendered["period"])
    resend = bool(s.params.get("resend"))
    ledger = StoreLedger(archive.store, archive.sent_marker)
    info = s.info

    def mail() -> dict[str, Any]:
        email = prepare_email(archive, settings, s.config.contacts, ledger.records())
        receipt = send_email(email, conn_id=settings.smtp_conn_id)
        return {
            "sent_at": datetime.now(UTC).isoformat(), "message_id": receipt.message_id,
            "in_reply_to": email.references[-1] if email.references else None,
            "key": email.key, "language": rendered.get("language"), "to": list(email.to),
            "cc": list(email.cc), "accepted": list(receipt.accepted),
            "refused": list(receipt.refused), "kpis_digest": rendered["kpis_digest"],
            "run_id": info.run_id, "resend": resend}

    done = once(ledger, mail, again=resend)
    record = done.record or {}
    if not done.acted:
        if record.get("kpis_digest") != rendered["kpis_digest"]:
            log.warning("the numbers changed since this report was mailed on %s; trigger "
                        "with resend=true to mail the new version", record.get("sent_at"))
        log.info("already mailed on %s as %s; not sending again (resend=false)",
                 record.get("sent_at"), record.get("message_id"))
        return {"sent": False, "reason": "already sent", "marker": archive.url(archive.sent_marker)}
    return {"sent": True, "message_id": record["message_id"],
            "to": len(record["to"]) + len(record["cc"]),
            "thread": record["in_reply_to"] or record["message_id"]}
