"""The tasks every fetch → decide → apply → report pipeline shares: apply and report.

A pipeline's own plan task returns ``planned(...)``: the plan as JSON plus what apply and
report need (the keys each ticket carried, update times for the watermark). It travels
through XCom, so apply runs on any worker.

Apply runs the plan through the engine (``engine.applier``) under the pipeline's desk lease
and records what happened as the XCom ``applied``. When messages could not be delivered it
records them and fails, so Airflow retries it (the retry first delivers what is owed) and
the run shows red. Report runs whatever apply did (trigger rule ``all_done``): it writes the
plan page with every outcome and what is still owed, moves the watermark, and fails the run
when apply did not finish cleanly, naming why: failures reach a person, not a log.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from incident_ops.airflow.names import APPLIED_XCOM, PLAN_PAGE_XCOM, page_url
from incident_ops.model import Ticket
from incident_ops.policy.plan import Plan
from incident_ops.reports.outcome_words import counted

if TYPE_CHECKING:
    from incident_ops.airflow.bootstrap import Services

log = logging.getLogger(__name__)

APPLIED = APPLIED_XCOM  # XCom key of apply's record


class UndeliveredMessages(Exception):
    """Apply finished but messages are still owed (they stay in the outbox)."""


class ActionsFailed(Exception):
    """Apply finished but desk changes failed that another attempt may make (the desk was
    down, a write timed out): Airflow retries the task, which does them."""


def _tickets(outcomes: Iterable[Any]) -> str:
    return "; ".join(f"#{o.ticket_id} {o.kind}: {o.message}" for o in outcomes)


def fetch_clock() -> datetime:
    """When a fetch starts (the wall clock, not the run's time: the watermark is about
    what the desk has shown us, and a replayed run still reads today's desk)."""
    return datetime.now(UTC)


def clock_skew() -> timedelta:
    return timedelta(seconds=float(os.environ.get("INCIDENT_OPS_CLOCK_SKEW_SECONDS", "60")))


def planned(plan: Plan, tickets: Iterable[Ticket], *, now: datetime,
            watermark: dict[str, Any] | None = None, bulk_size: int = 100,
            read: Mapping[str, datetime] | None = None) -> dict[str, Any]:
    """What a plan task hands on. ``read``: ticket id -> the update time the watermark holds
    back to if that ticket's action does not happen; ``watermark``: {"fetch_started",
    "desk_mark", "since"} of an incremental fetch."""
    tickets = list(tickets)
    log.info("plan %s: %s; %d findings, %d waiting", plan.run_id,
             plan.by_kind() or "nothing to do", len(plan.findings), len(plan.waiting))
    for finding in plan.findings:
        log.warning("%s", finding)
    return {
        "plan": plan.to_dict(),
        "keys": {t.id: list(t.automation_keys) for t in tickets},
        "updated": {tid: at.isoformat() for tid, at in (read or {}).items()},
        "watermark": watermark,
        "now": now.isoformat(),
        "bulk_size": bulk_size,
    }


def apply_task(planned: dict[str, Any], services: Services) -> dict[str, Any] | None:
    """Apply the plan (nothing in a dry run); record and return what happened."""
    if services.dry_run:
        log.info("dry run: %d planned actions not applied", len(planned["plan"]["actions"]))
        return None
    from airflow.sdk.exceptions import AirflowSkipException

    from incident_ops.airflow.state import VariableOutbox

    plan = Plan.from_dict(planned["plan"])
    # Read first, before the lease or any desk write: an outbox this process cannot read
    # stops the task here (state._unreadable), never taken for an empty one.
    owed = VariableOutbox(plan.pipeline).load()
    if not plan.actions and not owed:
        record: dict[str, Any] = {"outcomes": [], "replayed": [], "undelivered": []}
        applied = None
    else:
        applier = services.applier(plan.pipeline, bulk_size=int(planned.get("bulk_size", 100)))
        applied = applier.apply(plan, planned["keys"])
        record = {"outcomes": [o.to_dict() for o in applied.outcomes],
                  "replayed": [o.to_dict() for o in applied.replayed],
                  "undelivered": applied.undelivered}
        for line in summary_lines(applied.outcomes, applied.replayed,
                                  undelivered=applied.undelivered,
                                  findings=len(plan.findings)):
            log.info("%s", line)
        for o in [*applied.replayed, *applied.outcomes]:
            if o.outcome in ("failed", "stale", "undelivered", "deferred", "waiting"):
                log.warning("ticket %s: %s %s: %s", o.ticket_id, o.kind, o.outcome, o.message)
    services.context["ti"].xcom_push(key=APPLIED, value=record)
    if applied is not None and applied.deferred:
        # Visible in the grid (apply skipped) and on the plan page, not only in this log.
        raise AirflowSkipException(f"nothing applied: {applied.outcomes[0].message}")
    failures = applied.retry_failures if applied is not None else []
    if failures:
        raise ActionsFailed(
            f"{len(failures)} action(s) failed and are tried again by the next attempt "
            f"(then by the next run): {_tickets(failures)}")
    if record["undelivered"]:
        raise UndeliveredMessages(
            f"{len(record['undelivered'])} message(s) not delivered; they stay owed in the "
            f"outbox and go out on the next attempt or run: " + "; ".join(record["undelivered"]))
    return record


def summary_lines(outcomes: Iterable[Any], replayed: Iterable[Any] = (), *,
                  undelivered: Iterable[str] = (), findings: int = 0,
                  waiting: int = 0) -> list[str]:
    """The task log's summary: one line per kind of action (how many of each outcome, each
    outcome but done explained in words), then what earlier runs owed, the messages still
    owed, and the findings (bad input)."""
    by_kind: dict[str, dict[str, int]] = {}
    for o in outcomes:
        counts = by_kind.setdefault(o.kind, {})
        counts[o.outcome] = counts.get(o.outcome, 0) + 1
    lines = [f"{kind:<16} " + ", ".join(counted(outcome, n) for outcome, n in sorted(c.items()))
             for kind, c in sorted(by_kind.items())] or ["nothing to apply"]
    owed = list(replayed)
    if owed:
        done = sum(1 for o in owed if o.outcome == "done")
        lines.append(f"{'owed earlier':<16} {len(owed)} carried on, {done} now complete")
    unsent = list(dict.fromkeys(undelivered))  # one entry per message
    lines.append(f"{'undelivered':<16} {len(unsent)} message(s)"
                 + (" owed, will be retried (a send failed; the outbox sends it again with "
                    "the next attempt or run): " + "; ".join(unsent[:10])
                    + (" …" if len(unsent) > 10 else "") if unsent else ""))
    lines.append(f"{'findings':<16} {findings} (bad input, named by ticket and field on the "
                 "plan page)" if findings else f"{'findings':<16} 0")
    if waiting:
        lines.append(f"{'waiting':<16} {waiting} ticket(s) (for a requester or a master)")
    return lines


def report_task(services: Services) -> dict[str, Any]:
    from airflow.sdk.exceptions import AirflowFailException

    from incident_ops.airflow.object_store import artefact_store
    from incident_ops.airflow.state import read_watermark, write_watermark
    from incident_ops.engine import ActionOutcome
    from incident_ops.engine.watermark import next_watermark
    from incident_ops.reports.plan_report import write_plan_report

    ti = services.context["ti"]
    planned = ti.xcom_pull(task_ids="plan")
    if not planned:
        # Fail, not skip: Airflow judges a run by its leaves, and a skipped report would
        # make a run whose plan failed (the desk down, say) look successful.
        raise AirflowFailException("the plan task did not finish: nothing was decided or "
                                   "applied in this run (see the plan task's log)")
    plan = Plan.from_dict(planned["plan"])
    dry_run = services.dry_run
    record = None if dry_run else ti.xcom_pull(task_ids="apply", key=APPLIED)
    outcomes = [ActionOutcome(**o) for o in record["outcomes"]] if record else None
    replayed = [ActionOutcome(**o) for o in record["replayed"]] if record else []
    now = datetime.fromisoformat(planned["now"])
    store = artefact_store()
    paths = write_plan_report(plan, outcomes, store, now=now, dry_run=dry_run,
                              replayed=replayed,
                              undelivered=record["undelivered"] if record else [])
    log.info("plan report: %s", store.url(paths["html"]))
    url = page_url(paths["html"])
    if url:
        ti.xcom_push(key=PLAN_PAGE_XCOM, value=url)
        log.info("plan page in the Airflow UI: %s (the task's extra link 'Plan page')", url)
    unsent = list(record["undelivered"]) if record else []
    for line in summary_lines(outcomes or [], replayed, undelivered=unsent,
                              findings=len(plan.findings), waiting=len(plan.waiting)):
        log.info("%s", line)
    result: dict[str, Any] = {"report": paths, "summary": plan.by_kind(),
                              "findings": len(plan.findings), "undelivered": len(unsent)}
    if outcomes is not None:
        result["outcomes"] = {o: sum(1 for x in outcomes if x.outcome == o)
                              for o in sorted({x.outcome for x in outcomes})}
    mark = planned.get("watermark")
    if mark and outcomes is not None:
        previous = read_watermark(plan.pipeline)
        updated = {k: datetime.fromisoformat(v) for k, v in planned["updated"].items()}
        new = next_watermark(previous, datetime.fromisoformat(mark["fetch_started"]),
                             int(mark["desk_mark"]), updated, [*outcomes, *replayed],
                             clock_skew())
        if new != previous:
            write_watermark(plan.pipeline, new)
            log.info("watermark of %s moved to %s", plan.pipeline, new.at.isoformat())
        result["watermark"] = new.at.isoformat()
    if not dry_run and record is None:
        raise AirflowFailException(f"apply did not finish: nothing it did is recorded; what it "
                                   f"committed is read off the desk by the next run. Plan: "
                                   f"{paths['html']}")
    failed = [o for o in [*replayed, *(outcomes or [])] if o.outcome == "failed"]
    if failed:
        raise AirflowFailException(f"{len(failed)} action(s) failed after every retry; the "
                                   f"next run reads these tickets again and does them: "
                                   f"{_tickets(failed)}. Listed in {paths['html']}")
    if record and record["undelivered"]:
        raise AirflowFailException(f"{len(record['undelivered'])} message(s) could not be "
                                   f"delivered after every retry; they stay owed and go out "
                                   f"with the next run. Listed in {paths['html']}")
    return result
