"""100.7.2 by link, in a deployment: the secret, the links in the mail, the desk write.

The secret is the password of the Airflow connection ``incident_ops_answers`` (any
connection type; a secrets backend or ``AIRFLOW_CONN_INCIDENT_OPS_ANSWERS`` serve it the
same way). Its extra ``valid_days`` (default 14) is how long a link stays valid, and
``previous_secrets`` (``[{"secret": ..., "retire_after": "2026-12-31"}]``) the secrets it
replaced: links they signed are still accepted until their ``retire_after`` (a rotation,
docs/deploy.md). Without the connection the confirmation mail goes out as before, without
links: the help desk records the answer.

The links point at the API server (``$INCIDENT_OPS_AIRFLOW_URL``), where the plugin's
``answer_pages`` serve them. What an answer may change is ``policy.answers.judge``; the write
is conditional on the ticket's version, like every apply.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from incident_ops.airflow.names import ANSWER_CONN, URL_PREFIX
from incident_ops.desk.port import ServiceDesk, StaleTicket
from incident_ops.model import TicketChange
from incident_ops.policy.answers import (
    DEFAULT_VALID_FOR,
    Claim,
    Keyring,
    PreviousSecret,
    Verdict,
    answer_comment,
    answer_context,
    claims_for,
    judge,
    previous_secrets,
    sign,
)

log = logging.getLogger(__name__)

CONFIRMATION_TEMPLATE = "confirmation_request"


@dataclass(frozen=True)
class AnswerSettings:
    secret: str = field(repr=False)  # the current secret: it signs
    valid_for: timedelta = DEFAULT_VALID_FOR
    previous: tuple[PreviousSecret, ...] = ()  # still verify, each until its retire_after

    @property
    def keys(self) -> Keyring:
        return Keyring(self.secret, self.previous)


def answer_settings(conn_id: str = ANSWER_CONN) -> AnswerSettings | None:
    """The deployment's answer-link settings, or None when the connection is not there."""
    from airflow.sdk import BaseHook

    from incident_ops.airflow.provider.desk_hook import ConnectionConfigError

    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception:  # noqa: BLE001 - AirflowNotFoundException and its kin: no links
        return None
    if not conn.password:
        raise ConnectionConfigError(conn_id, "password", "is empty: it is the secret that "
                                    "signs the requester's answer links")
    extra = conn.extra_dejson or {}
    try:
        days = float(extra.get("valid_days", DEFAULT_VALID_FOR.days))
    except (TypeError, ValueError):
        days = -1
    if not 0 < days <= 365:
        raise ConnectionConfigError(conn_id, "valid_days",
                                    f"must be a number of days from 1 to 365, got "
                                    f"{extra.get('valid_days')!r}")
    try:
        previous = previous_secrets(extra.get("previous_secrets"))
        Keyring(conn.password, previous)
    except ValueError as exc:  # the message names the entry, never the secret
        raise ConnectionConfigError(conn_id, "previous_secrets", str(exc)) from None
    _mask(previous)
    return AnswerSettings(conn.password, timedelta(days=days), previous)


def _mask(previous: tuple[PreviousSecret, ...]) -> None:
    """Airflow masks a connection's password and its extra as a whole; a previous secret is
    a value inside the extra, so it is masked on its own (task and API server logs)."""
    from airflow.sdk.log import mask_secret

    for p in previous:
        mask_secret(p.secret)


def link_renderer(base_url: str, load: Callable[[], AnswerSettings | None] = answer_settings
                  ) -> Callable[[Any], Mapping[str, Any]]:
    """The applier's ``render_context``: the two signed links of a confirmation mail.

    The settings are read at the first confirmation mail (other pipelines never read them).
    """
    prefix = base_url.rstrip("/") + URL_PREFIX
    loaded: list[AnswerSettings | None] = []

    def render(notice: Any) -> Mapping[str, Any]:
        asked = notice.context.get("asked_at") if notice.template == CONFIRMATION_TEMPLATE \
            else None
        if not asked:
            return {}
        if not loaded:
            loaded.append(load())
            if loaded[0] is None:
                log.info("no connection %r: confirmation mails go out without answer links "
                         "(the help desk records the answer)", ANSWER_CONN)
        settings = loaded[0]
        if settings is None:
            return {}
        claims = claims_for(str(notice.context["id"]), datetime.fromisoformat(asked),
                            settings.valid_for)
        return answer_context(claims, [sign(settings.keys, c) for c in claims], prefix)

    return render


_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _ticket_lock(ticket_id: str) -> threading.Lock:
    with _LOCKS_GUARD:
        if len(_LOCKS) > 10_000:
            _LOCKS.clear()
        return _LOCKS.setdefault(ticket_id, threading.Lock())


def record_answer(desk: ServiceDesk, claim: Claim, comment: str, *, attempts: int = 4
                  ) -> Verdict:
    """Record ``claim``'s answer on its ticket, once: conditional on the version read.

    Two clicks at once in one API server are taken one after the other (a lock per ticket);
    across processes the desk's conditional write decides, and the loser re-reads and finds
    the ticket answered. A change by someone else between read and write is re-read.
    """
    with _ticket_lock(claim.ticket_id):
        for _ in range(attempts):
            ticket = desk.get(claim.ticket_id)
            verdict = judge(ticket, claim)
            if not verdict.accept:
                return verdict
            try:
                desk.update(TicketChange(ticket.id, fields={"confirmation": claim.confirmation},
                                         expected_version=ticket.version))
            except StaleTicket:
                continue
            desk.comment(ticket.id, answer_comment(
                claim, comment, f"link sent to {ticket.requester or 'the requester'}"))
            log.info("ticket #%s: the requester answered %s by link", ticket.id, claim.answer)
            return verdict
    raise StaleTicket(f"ticket {claim.ticket_id} kept changing while the answer was written",
                      ticket_id=claim.ticket_id)
