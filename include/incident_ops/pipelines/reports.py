"""The manager-report pipeline's steps: fetch → compute → render → send, without Airflow.

Each step reads what the step before wrote into the period's archive folder
(``reports.archive``) and returns a few small values, so a retried step repeats only
itself and XCom carries paths and numbers, never tickets.

Fetch asks the desk two bounded questions about the two periods the report compares (this
one and the one before): tickets *created* in that window, and tickets created before it
that were *resolved or closed* since it began (found by status and last-update time, then
kept only when their resolution or closing time falls in the window). The second search
grows with what changed since the window began, not with the size of the desk. Both read
the tickets' status and owner history with them (``TicketQuery.history``: in bulk, one
query per page of tickets on RT), so resolution, close and response times are the desk's
own.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from incident_ops.desk.port import ServiceDesk, TicketQuery
from incident_ops.model import CLOSED, RESOLVED, Ticket
from incident_ops.notify.messages import Email
from incident_ops.policy.escalation import SlaPolicy
from incident_ops.reference import Contacts, Vocabulary
from incident_ops.reports.archive import ReportArchive, digest
from incident_ops.reports.frame import frame_from_tickets, snapshot_bytes, snapshot_from_bytes
from incident_ops.reports.kpis import KpiSettings, PeriodKpis, compute_kpis, period_tickets
from incident_ops.reports.labels import Labels
from incident_ops.reports.periods import Period
from incident_ops.reports.render import content_id, render_report
from incident_ops.reports.settings import ReportSettings

log = logging.getLogger(__name__)


def period_queries(period: Period) -> tuple[TicketQuery, TicketQuery]:
    """The two searches covering ``period`` and the one before it."""
    since, until = period.previous().start_utc, period.end_utc
    created = TicketQuery(created_since=since, created_before=until, history=True)
    finished = TicketQuery(statuses=(RESOLVED, CLOSED), updated_since=since,
                           created_before=since, history=True)
    return created, finished


def fetch_tickets(desk: ServiceDesk, period: Period, stats: dict[str, int]
                  ) -> Iterator[Ticket]:
    """Every ticket the report of ``period`` needs, each once, streamed from the desk."""
    since, until = period.previous().start_utc, period.end_utc
    created_query, finished_query = period_queries(period)
    seen: set[str] = set()
    for ticket in desk.search(created_query):
        if ticket.id not in seen:
            seen.add(ticket.id)
            stats["created"] += 1
            yield ticket
    for ticket in desk.search(finished_query):
        if ticket.id in seen:
            continue
        seen.add(ticket.id)
        if _finished_within(ticket, since, until):
            stats["finished_earlier_created"] += 1
            yield ticket
        else:
            stats["skipped"] += 1


def _finished_within(ticket: Ticket, since: datetime, until: datetime) -> bool:
    return any(moment is not None and since <= moment < until
               for moment in (ticket.resolved_at, ticket.completed_at, ticket.closed_at))


def fetch(desk: ServiceDesk, archive: ReportArchive) -> dict[str, Any]:
    """Fetch the period's tickets into the archive's snapshot; a desk error propagates."""
    stats = {"created": 0, "finished_earlier_created": 0, "skipped": 0}
    # The frame is built only after the last page arrived: a desk failing midway raises
    # here, before anything is written, so no later step can see a partial snapshot.
    frame = frame_from_tickets(fetch_tickets(desk, archive.period, stats))
    archive.write(archive.snapshot, snapshot_bytes(frame))
    log.info("%s %s: %d tickets (%d created in the window, %d created earlier and "
             "finished in it; %d updated but finished outside it)", archive.period.kind,
             archive.period.label, len(frame), stats["created"],
             stats["finished_earlier_created"], stats["skipped"])
    return {"snapshot": archive.url(archive.snapshot), "tickets": len(frame), **stats}


def kpi_settings(settings: ReportSettings, vocab: Vocabulary, sla: SlaPolicy | None
                 ) -> KpiSettings:
    return KpiSettings.from_config(vocab, sla, tz=settings.timezone, top_n=settings.top_n,
                                   list_limit=settings.list_limit)


def compute(archive: ReportArchive, settings: KpiSettings) -> PeriodKpis:
    sla = settings.sla
    if sla is not None and sla.calendar is not None and sla.calendar_priorities:
        period = archive.period
        for year in sorted({period.previous().first_day.year, period.last_day.year}):
            for warning in sla.calendar.year_warnings(year):
                log.warning("SLA calendar: %s", warning)
    frame = snapshot_from_bytes(archive.read(archive.snapshot))
    kpis = compute_kpis(frame, archive.period, settings)
    archive.write_json(archive.kpis, kpis.to_dict())
    return kpis


def load_kpis(archive: ReportArchive) -> PeriodKpis:
    return PeriodKpis.from_dict(json.loads(archive.read(archive.kpis).decode("utf-8")))


def render(archive: ReportArchive, kpis: PeriodKpis, settings: ReportSettings,
           kpi_conf: KpiSettings, labels: Labels, *, dag_id: str, run_id: str
           ) -> dict[str, Any]:
    frame = snapshot_from_bytes(archive.read(archive.snapshot))
    detail, total = period_tickets(frame, archive.period, kpi_conf,
                                   limit=settings.detail_rows_max)
    report = render_report(kpis, labels, detail, total, dag_id=dag_id, run_id=run_id,
                           email_rows=settings.email_rows, sla_goal_pct=settings.sla_goal_pct)
    cids = {c.name: content_id(kpis, c) for c in report.charts}
    kpis_digest = digest(archive.read(archive.kpis))
    manifest = archive.write_rendered(report, cids, {
        "language": labels.lang, "kpis_digest": kpis_digest, "run_id": run_id,
        "period": archive.period.to_dict()})
    return {"folder": archive.url(), "subject": manifest["subject"],
            "charts": len(report.charts), "kpis_digest": kpis_digest, "language": labels.lang}


def report_key(period: Period, language: str, sent_before: int, kpis_digest: str) -> str:
    """The mail's idempotency key (-> its Message-ID): one per mail the period gets.

    The Chinese and the English mail, and each ``resend``, are different messages (a client
    that drops a second mail with a known Message-ID would hide them); a send retried after
    a failure, with nothing recorded as sent in between, is the same message again. The
    numbers' digest keeps a report whose numbers changed apart even if ``sent.json`` was lost.
    """
    return (f"report:{period.kind}:{period.label}:{language}:{sent_before}:"
            f"{kpis_digest[:12]}")


def prepare_email(archive: ReportArchive, settings: ReportSettings, contacts: Contacts,
                  sends: Sequence[Mapping[str, Any]]) -> Email:
    """The period's mail as rendered, keyed as its next send and threaded under its first
    (``sends``: the mails sent for the period before, oldest first)."""
    manifest = archive.read_manifest()
    to, cc = settings.audience(archive.period.kind).addresses(contacts)
    if not to:
        raise ValueError(f"reports.yaml names no recipients for the {archive.period.kind} "
                         "report (periods.<kind>.to / roles)")
    first = [s["message_id"] for s in sends[:1] if s.get("message_id")]
    key = report_key(archive.period, manifest.get("language") or "zh", len(sends),
                     manifest["kpis_digest"])
    return archive.email(manifest, to=to, cc=cc, key=key, references=tuple(first))
