"""One emergency per incident, at the door: the API server refuses a second trigger (issue 24).

A root middleware of the API server (registered by the plugin) looks at every
``POST /api/v2/dags/emergency_response/dagRuns``, the call behind the UI's trigger form and
the REST API. When the incident of its conf has an emergency still running (a run queued or
running with that ``ticket_id``, not a dry run) and the trigger does not say
``start_anyway``, it answers **409** with the running run(s) named and linked, before a run
exists; ``start_anyway`` without a reason is answered 400. The form shows that message.

Only an authenticated caller allowed to trigger the DAG gets this answer; anything else
(no token, no right, a body that is not JSON) goes on to Airflow, which answers as usual.
What comes in another way (``airflow dags trigger`` writes to the database) is stopped by
the run's own first task (``emergency.guard``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from incident_ops.airflow.emergency.guard import DAG_ID, RUNNING, run_url
from incident_ops.policy import emergency_overlap as overlap

log = logging.getLogger(__name__)

TRIGGER_PATH = f"/api/v2/dags/{DAG_ID}/dagRuns"
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def running_emergencies(ticket_id: str) -> list[tuple[str, str | None, str]]:
    """(run id, who triggered it, link) of each emergency of ``ticket_id`` still running."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(DagRun.run_id, DagRun.conf, DagRun.triggering_user_name)
            .where(DagRun.dag_id == DAG_ID, DagRun.state.in_(RUNNING))
            .order_by(DagRun.run_after)).all()
    return [(run_id, by, run_url(run_id)) for run_id, conf, by in rows
            if isinstance(conf, dict) and str(conf.get("ticket_id")) == ticket_id
            and not conf.get("dry_run")]


def refusal_for(body: bytes) -> tuple[int, str] | None:
    """(status, message) when the trigger in ``body`` must be refused; None otherwise."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return None
    conf = data.get("conf") if isinstance(data, dict) else None
    if not isinstance(conf, dict) or conf.get("dry_run") or conf.get("continuation"):
        return None
    problem = overlap.reason_problem(conf)
    if problem:
        return 400, problem
    ticket_id = conf.get("ticket_id")
    if conf.get("start_anyway") or not isinstance(ticket_id, str | int):
        return None
    running = running_emergencies(str(ticket_id))
    return (409, overlap.refusal(str(ticket_id), running)) if running else None


async def may_trigger(scope: Scope) -> bool:
    """The caller is signed in (bearer token or the UI's cookie) and may trigger the DAG."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from airflow.api_fastapi.auth.managers.models.resource_details import (
        DagAccessEntity,
        DagDetails,
    )
    from starlette.requests import Request

    request = Request(scope)
    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else \
        request.cookies.get(COOKIE_NAME_JWT_TOKEN)
    if not token:
        return False
    manager = get_auth_manager()
    try:
        user = await manager.get_user_from_token(token)
    except Exception:  # noqa: BLE001 - Airflow itself answers a bad token (401/403)
        return False
    return bool(manager.is_authorized_dag(method="POST", access_entity=DagAccessEntity.RUN,
                                          details=DagDetails(id=DAG_ID), user=user))


class OneEmergencyPerIncident:
    """The ASGI middleware: reads the trigger's body, answers a refusal or passes it on
    (with the body replayed) untouched."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http" or scope.get("method") != "POST" \
                or not str(scope.get("path", "")).rstrip("/").endswith(TRIGGER_PATH):
            await self.app(scope, receive, send)
            return
        messages, body = [], b""
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body"):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        refused = await self._refusal(scope, body)
        if refused is None:
            await self.app(scope, replay, send)
            return
        status, detail = refused
        log.info("emergency trigger refused (%d): %s", status, detail)
        payload = json.dumps({"detail": detail}, ensure_ascii=False).encode("utf-8")
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})

    async def _refusal(self, scope: Scope, body: bytes) -> tuple[int, str] | None:
        from starlette.concurrency import run_in_threadpool

        try:
            refused = await run_in_threadpool(refusal_for, body)
            if refused is None or not await may_trigger(scope):
                return None
            return refused
        except Exception:  # noqa: BLE001 - never block a trigger because the check broke
            log.exception("one-emergency check failed; the trigger goes on to Airflow")
            return None
