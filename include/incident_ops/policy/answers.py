"""100.7.2 by link: the requester's "fixed" / "not fixed" answer, signed into the mail (pure).

The confirmation mail carries two links, one per answer. Each holds a small signed claim:
the ticket, the answer, the asking round (``confirmation_asked_at``, to the second) and an
expiry. The secret never leaves the deployment (an Airflow connection); the links are
computed when the mail is rendered, so a plan or an XCom never holds one.

What a link may change is decided here, against the ticket as the desk shows it now:
only a resolved ticket still waiting (``pending``) for the answer of *that* asking round
takes an answer. A second click, a click after the help desk recorded the answer by phone,
a link of an earlier round or a closed ticket change nothing and say why. A link is
single-use by construction: the first answer moves the ticket off ``pending``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from incident_ops.model import (
    CONFIRMATION_CONFIRMED,
    CONFIRMATION_PENDING,
    CONFIRMATION_REJECTED,
    RESOLVED,
    Ticket,
)

ANSWERS = {"fixed": CONFIRMATION_CONFIRMED, "not-fixed": CONFIRMATION_REJECTED}
DEFAULT_VALID_FOR = timedelta(days=14)
COMMENT_LIMIT = 2000
_VERSION = 1


class LinkProblem(ValueError):
    """A link that cannot be honoured: ``kind`` is forged, expired or malformed."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Claim:
    ticket_id: str
    answer: str  # a key of ANSWERS
    asked: int  # confirmation_asked_at, seconds since the epoch (the asking round)
    expires: int  # seconds since the epoch

    @property
    def confirmation(self) -> str:
        return ANSWERS[self.answer]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode("utf-8"), payload.encode("ascii"),
                         hashlib.sha256).digest())


def sign(secret: str, claim: Claim) -> str:
    """The token of ``claim``: ``<payload>.<signature>``, URL-safe."""
    if not secret:
        raise ValueError("answer links need a secret")
    if claim.answer not in ANSWERS:
        raise ValueError(f"unknown answer {claim.answer!r}; one of {sorted(ANSWERS)}")
    body = json.dumps({"v": _VERSION, "t": claim.ticket_id, "a": claim.answer,
                       "r": claim.asked, "e": claim.expires}, separators=(",", ":"))
    payload = _b64(body.encode("utf-8"))
    return f"{payload}.{_mac(secret, payload)}"


def verify(secret: str, token: str, now: datetime) -> Claim:
    """The claim a token carries; ``LinkProblem`` when it is altered, foreign or expired."""
    payload, dot, signature = token.partition(".")
    if not dot or not payload or not signature or len(token) > 1000:
        raise LinkProblem("malformed", "the link is incomplete")
    if not hmac.compare_digest(_mac(secret, payload), signature):
        raise LinkProblem("forged", "the link's signature does not match")
    try:
        data = json.loads(_unb64(payload))
        claim = Claim(str(data["t"]), str(data["a"]), int(data["r"]), int(data["e"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise LinkProblem("malformed", f"the link's content is unreadable ({exc})") from exc
    if data.get("v") != _VERSION or claim.answer not in ANSWERS:
        raise LinkProblem("malformed", "the link is of an unknown kind")
    if now.timestamp() >= claim.expires:
        raise LinkProblem("expired", "the link expired on " + datetime.fromtimestamp(
            claim.expires, UTC).strftime("%Y-%m-%d %H:%M UTC"))
    return claim


def claims_for(ticket_id: str, asked_at: datetime, valid_for: timedelta) -> list[Claim]:
    """The two claims of one asking round, in the order the mail shows them."""
    asked = int(asked_at.timestamp())
    expires = int((asked_at + valid_for).timestamp())
    return [Claim(ticket_id, answer, asked, expires) for answer in ANSWERS]


@dataclass(frozen=True)
class Verdict:
    """What an answer may do to the ticket: ``accept`` or why not (``reason``)."""

    accept: bool
    reason: str  # accepted | answered | closed | other-round | not-asked
    current: str | None = None  # the answer already recorded, when there is one


def judge(ticket: Ticket, claim: Claim) -> Verdict:
    """Whether ``claim`` may record its answer on ``ticket`` as the desk shows it now."""
    asked = ticket.confirmation_asked_at
    if asked is None or int(asked.timestamp()) != claim.asked:
        return Verdict(False, "other-round" if asked else "not-asked")
    if ticket.confirmation in (CONFIRMATION_CONFIRMED, CONFIRMATION_REJECTED):
        return Verdict(False, "answered", ticket.confirmation)
    if ticket.status != RESOLVED or ticket.confirmation != CONFIRMATION_PENDING:
        return Verdict(False, "closed" if ticket.status != RESOLVED else "not-asked")
    return Verdict(True, "accepted")


def answer_comment(claim: Claim, comment: str, who: str) -> str:
    """The desk comment that records the answer (the requester's own words included)."""
    said = {"fixed": "已解决 / fixed", "not-fixed": "未解决 / not fixed"}[claim.answer]
    text = (f"【请求人确认 100.7.2】请求人通过确认链接答复：{said}\n"
            f"[Requester confirmation 100.7.2] The requester answered by the link in the "
            f"confirmation mail: {said} ({who}).")
    if comment.strip():
        text += f"\n\n请求人留言 / The requester's comment:\n{comment.strip()[:COMMENT_LIMIT]}"
    return text


def answer_context(claims: list[Claim], tokens: list[str], base_url: str) -> dict[str, Any]:
    """What the confirmation template shows: one URL per answer."""
    return {"answer_links": {c.answer: f"{base_url}/answer/{t}"
                             for c, t in zip(claims, tokens, strict=True)}}
