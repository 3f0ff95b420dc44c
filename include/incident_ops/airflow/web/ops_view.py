"""The "Incident ops" view in the Airflow UI: what the automation decided and still owes.

Served by the plugin app at ``/incident-ops/view/`` (an external view in Airflow's nav,
embedded in the UI), behind Airflow's own login: the reader needs read access to DAG runs.

- the newest runs of each pipeline with their outcomes (from the plan reports' day
  indexes in the artefact store, ``reports.trail``);
- a ticket's automation trail across runs (``reports.trail``): rule, step, run, outcome,
  messages, and the copy a reopen created;
- the messages in the pipelines' outboxes (Airflow Variables ``incident_ops.outbox.*``): those
  being sent (queued by an apply, not yet confirmed) apart from those owed (a send failed;
  retried by the next attempt or run);
- human questions still waiting for an answer (Airflow's HITL details);
- links to each run in Airflow and to each ticket in the desk.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

from fastapi import Depends, HTTPException
from fastapi.responses import HTMLResponse, RedirectResponse

from incident_ops.airflow.bootstrap import WebServices, web_services
from incident_ops.airflow.names import airflow_url, page_url
from incident_ops.airflow.state import OUTBOX_PREFIX
from incident_ops.engine.outbox import Pending

log = logging.getLogger(__name__)

VIEW_PATH = "/view"


def _outboxes() -> list[dict[str, Any]]:
    """Every message an outbox still owes, with its ticket and last error."""
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    owed: list[dict[str, Any]] = []
    with create_session() as session:
        rows = session.scalars(select(Variable).where(Variable.key.like(OUTBOX_PREFIX + "%")))
        for row in rows:
            try:
                entries = json.loads(row.val or "{}")
            except ValueError:
                log.warning("outbox %s does not hold JSON", row.key)
                continue
            for key, data in entries.items():
                try:
                    entry = Pending.from_dict(data)  # what VariableOutbox.load reads
                except (KeyError, TypeError, ValueError) as exc:
                    log.warning("outbox %s: entry %s unreadable (%s)", row.key, key, exc)
                    continue
                owed.append({"scope": row.key.removeprefix(OUTBOX_PREFIX), "key": key,
                             "ticket_id": entry.ticket_id, "step": entry.action.get("step", ""),
                             "run_id": entry.run_id, "queued_at": entry.queued_at,
                             "attempts": entry.attempts, "last_error": entry.last_error})
    return sorted(owed, key=lambda o: str(o["queued_at"]))


def _questions() -> list[dict[str, Any]]:
    """Human questions (HITL) no one has answered yet, oldest first."""
    from airflow.models.hitl import HITLDetail
    from airflow.utils.session import create_session
    from sqlalchemy import select

    waiting: list[dict[str, Any]] = []
    with create_session() as session:
        rows = session.scalars(select(HITLDetail).where(HITLDetail.responded_at.is_(None))
                               .order_by(HITLDetail.created_at))
        for row in rows:
            ti = row.task_instance
            waiting.append({"subject": row.subject, "dag_id": ti.dag_id, "run_id": ti.run_id,
                            "task_id": ti.task_id, "created_at": row.created_at,
                            "assignees": ", ".join(str(a.get("name") or a.get("id"))
                                                   for a in row.assignees or [])})
    return waiting


def _desk_url(web: WebServices) -> str | None:
    try:
        return web.desk_url()
    except Exception:  # noqa: BLE001 - the view works without desk links
        return None


def _links(web: WebServices) -> dict[str, Any]:
    base = airflow_url()
    desk = _desk_url(web)

    def run(dag_id: str, run_id: str) -> str:
        return f"{base}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}"

    def task(dag_id: str, run_id: str, task_id: str) -> str:
        return f"{run(dag_id, run_id)}/tasks/{quote(task_id)}"

    def ticket(ticket_id: Any) -> str | None:
        return f"{desk}/Ticket/Display.html?id={quote(str(ticket_id))}" if desk else None

    return {"run_url": run, "task_url": task, "desk_ticket": ticket}


def being_sent(entry: dict[str, Any]) -> bool:
    """An outbox entry no apply has tried yet: queued by an apply (running now, or stopped
    before its follow-ups), not yet confirmed sent. One tried and not struck off is owed:
    a send failed and the next attempt or run tries again."""
    return not entry["attempts"] and not entry["last_error"]


def split_outbox(entries: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The view's two lists: ``sending`` (being sent) and ``owed`` (will be retried)."""
    return {"sending": [e for e in entries if being_sent(e)],
            "owed": [e for e in entries if not being_sent(e)]}


def render(template: str, services: WebServices, **values: Any) -> str:
    """One of the view's pages: times in the deployment's zone (``when``), links to runs,
    tasks, tickets and plan pages, the outcomes' words (``reports.outcome_words``)."""
    from incident_ops.config import timezone
    from incident_ops.notify.compose import environment
    from incident_ops.reports.outcome_words import legend, words
    from incident_ops.reports.trail import shown

    tz = timezone()
    return environment().get_template(f"pages/{template}").render(
        **_links(services), tz=tz, when=lambda at: shown(at, tz), words=words,
        outcome_legend=legend,
        plan_page=page_url, **values)


def register(app: Any, web: WebServices | None = None) -> None:
    """Add the view's routes to the plugin's FastAPI ``app`` (Airflow login required)."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag

    from incident_ops.airflow.object_store import artefact_store
    from incident_ops.reports.trail import recent_runs, ticket_trail

    services = web or web_services()
    readers = [Depends(requires_access_dag("GET", DagAccessEntity.RUN))]

    def html(template: str, **values: Any) -> HTMLResponse:
        return HTMLResponse(render(template, services, **values),
                            headers={"Cache-Control": "no-store"})

    @app.get(VIEW_PATH, dependencies=readers, include_in_schema=False)
    def view_root() -> RedirectResponse:
        return RedirectResponse("view/")

    @app.get(VIEW_PATH + "/", dependencies=readers, response_class=HTMLResponse)
    def overview(ticket: str | None = None) -> Any:
        if ticket:
            wanted = ticket.strip().lstrip("#")
            if not wanted.isdigit():
                raise HTTPException(400, f"ticket {ticket!r}: a ticket number, e.g. 42")
            return RedirectResponse(f"ticket/{wanted}", status_code=303)
        runs = recent_runs(artefact_store())
        codes = sorted({o for listed in runs.values() for r in listed for o in r.outcome_counts})
        return html("ops_view.html.j2", runs=runs, codes=codes, questions=_questions(),
                    **split_outbox(_outboxes()))

    @app.get(VIEW_PATH + "/ticket/{ticket_id}", dependencies=readers,
             response_class=HTMLResponse)
    def trail(ticket_id: str) -> HTMLResponse:
        if not ticket_id.isdigit():
            raise HTTPException(400, f"ticket {ticket_id!r}: a ticket number, e.g. 42")
        lines = ticket_trail(artefact_store(), ticket_id)
        mine = [o for o in _outboxes() if o["ticket_id"] == ticket_id]
        return html("ops_ticket.html.j2", ticket_id=ticket_id, lines=lines,
                    **split_outbox(mine))
