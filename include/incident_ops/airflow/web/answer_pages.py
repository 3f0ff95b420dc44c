"""The requester's answer pages (100.7.2 by link), served by the API server's plugin app.

``GET /incident-ops/answer/<token>`` shows what the answer will do and a comment box; only
the form's ``POST`` records it. Mail security scanners open every link in a mail: a GET
that closed tickets would answer for the requester. These pages are public (the requester
has no Airflow account): the signed token is the only credential, and it can only move one
ticket of one asking round off ``pending`` (``policy.answers``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import HTMLResponse

from incident_ops.airflow.bootstrap import WebServices, web_services
from incident_ops.policy.answers import LinkProblem, Verdict, verify

log = logging.getLogger(__name__)

_LABELS = {"confirmed": "已解决 / fixed", "rejected": "未解决 / not fixed"}
# reason -> (HTTP status, Chinese, English)
PROBLEMS: dict[str, tuple[int, str, str]] = {
    "malformed": (400, "此链接不完整或无效。", "This link is incomplete or not valid."),
    "forged": (400, "此链接无效：它被修改过，或不是本系统签发的。",
               "This link is not valid: it was altered, or it was not issued by this service."),
    "expired": (410, "此链接已过期。", "This link has expired."),
    "retired": (410, "此链接已失效：签发它的密钥已停用。",
                "This link is no longer valid: the key that signed it has been retired."),
    "answered": (409, "此事件已经答复过了。", "This incident has already been answered."),
    "closed": (409, "此事件已关闭。", "This incident is already closed."),
    "other-round": (409, "此链接属于较早的一次确认请求，已不再适用。",
                    "This link belongs to an earlier confirmation request and no longer "
                    "applies."),
    "not-asked": (409, "此事件当前不在等待您的确认。",
                  "This incident is not waiting for your confirmation."),
    "not-found": (404, "服务台中找不到此事件。", "The service desk has no such incident."),
    "desk-down": (503, "服务台暂时无法访问，请稍后再试同一链接。",
                  "The service desk cannot be reached right now; please try the same link "
                  "again in a few minutes."),
    "disabled": (503, "此处未启用确认链接。", "Answer links are not enabled here."),
}


def _helpdesk(web: WebServices) -> str | None:
    try:
        people = [p.email for p in web.config.contacts.role("helpdesk") if p.email]
    except Exception:  # noqa: BLE001 - a page without the address is still a page
        return None
    return people[0] if people else None


def render(state: str, ticket_id: str, *, helpdesk: Callable[[], str | None] = lambda: None,
           **values: Any) -> tuple[int, str]:
    from incident_ops.notify.compose import environment

    status = 200
    if state not in ("ask", "recorded"):
        status, zh, en = PROBLEMS[state]
        if values.get("detail"):
            en = f"{en} ({values.pop('detail')})"
        values.update(message_zh=zh, message_en=en, helpdesk=helpdesk())
    html = environment().get_template("pages/answer.html.j2").render(
        state=state, ticket_id=ticket_id, answer=values.pop("answer", ""),
        subject=values.pop("subject", ""), **values)
    return status, html


def register(app: Any, web: WebServices | None = None) -> None:
    """Add the answer routes to the plugin's FastAPI ``app`` (no Airflow login); the desk
    and the contacts come from the composition root (``bootstrap.web_services``)."""
    from incident_ops.airflow.provider.desk_hook import ConnectionConfigError
    from incident_ops.airflow.web.answer_links import answer_settings, record_answer
    from incident_ops.desk.port import DeskAuthError, DeskError, TicketNotFound

    services = web or web_services()

    def page(state: str, ticket_id: str = "?", **values: Any) -> HTMLResponse:
        status, html = render(state, ticket_id, helpdesk=lambda: _helpdesk(services),
                              **values)
        headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                   "X-Robots-Tag": "noindex"}
        return HTMLResponse(html, status_code=status, headers=headers)

    def refused(verdict: Verdict, ticket_id: str) -> HTMLResponse:
        detail = f"recorded: {_LABELS.get(verdict.current or '', verdict.current)}" \
            if verdict.current else ""
        return page(verdict.reason, ticket_id, detail=detail)

    def checked(token: str) -> Any:
        try:
            settings = answer_settings()
        except ConnectionConfigError as exc:
            log.error("answer links: %s", exc)
            return page("disabled")
        if settings is None:
            return page("disabled")
        try:
            return verify(settings.keys, token, datetime.now(UTC))
        except LinkProblem as exc:
            log.info("answer link refused (%s): %s", exc.kind, exc)
            return page(exc.kind, detail=str(exc) if exc.kind in ("expired", "retired")
                        else "")

    def desk_call(claim: Any, work: Any) -> HTMLResponse:
        try:
            return work(services.desk())
        except TicketNotFound:
            return page("not-found", claim.ticket_id)
        except DeskAuthError as exc:
            services.reset()
            log.error("answer for #%s: the desk refused our credentials: %s", claim.ticket_id,
                      exc)
            return page("desk-down", claim.ticket_id)
        except DeskError as exc:
            log.warning("answer for #%s not recorded: %s", claim.ticket_id, exc)
            return page("desk-down", claim.ticket_id)

    @app.get("/answer/{token}", response_class=HTMLResponse)
    def answer_form(token: str) -> HTMLResponse:
        from incident_ops.policy.answers import judge

        claim = checked(token)
        if isinstance(claim, HTMLResponse):
            return claim

        def show(d: Any) -> HTMLResponse:
            ticket = d.get(claim.ticket_id)
            verdict = judge(ticket, claim)
            if not verdict.accept:
                return refused(verdict, claim.ticket_id)
            return page("ask", claim.ticket_id, answer=claim.answer, subject=ticket.subject)

        return desk_call(claim, show)

    @app.post("/answer/{token}", response_class=HTMLResponse)
    async def answer_post(token: str, request: Request) -> HTMLResponse:
        from starlette.concurrency import run_in_threadpool

        body = (await request.body())[:20_000].decode("utf-8", "replace")
        comment = (parse_qs(body).get("comment") or [""])[0]
        return await run_in_threadpool(record, token, comment)

    def record(token: str, comment: str) -> HTMLResponse:
        claim = checked(token)
        if isinstance(claim, HTMLResponse):
            return claim

        def write(d: Any) -> HTMLResponse:
            verdict = record_answer(d, claim, comment)
            if not verdict.accept:
                return refused(verdict, claim.ticket_id)
            return page("recorded", claim.ticket_id, answer=claim.answer)

        return desk_call(claim, write)
