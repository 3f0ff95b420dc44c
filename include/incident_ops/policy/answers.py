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

The secret rotates (``Keyring``): links are signed with the current secret and verified with
it or any previous secret still within its window (``retire_after``), so the links of mails
sent before a rotation keep working until they expire. A link signed with a secret whose
window is over is refused as ``retired``, saying since when. The token format is unchanged
by rotation (links already in mailboxes stay valid across an upgrade); which secret signed a
link is found by trying each accepted one (a handful).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
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
    """A link that cannot be honoured: ``kind`` is forged, expired, retired or malformed."""

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


@dataclass(frozen=True)
class PreviousSecret:
    """A secret that signed links before a rotation: accepted until ``retire_after``."""

    secret: str = field(repr=False)
    retire_after: datetime  # aware; from this instant the links it signed are refused

    def __post_init__(self) -> None:
        if not self.secret:
            raise ValueError("a previous secret is empty")
        if self.retire_after.tzinfo is None:
            raise ValueError("retire_after has no time zone")


@dataclass(frozen=True)
class Keyring:
    """The secrets of answer links: ``current`` signs; it and every previous secret whose
    window is still open verify. Never shown: the secrets are left out of ``repr``."""

    current: str = field(repr=False)
    previous: tuple[PreviousSecret, ...] = ()

    def __post_init__(self) -> None:
        if not self.current:
            raise ValueError("answer links need a secret")
        if any(p.secret == self.current for p in self.previous):
            raise ValueError("a previous secret is the current secret")

    def accepted(self, now: datetime) -> list[str]:
        """The secrets a link may be signed with at ``now``, the current one first."""
        return [self.current] + [p.secret for p in self.previous if now < p.retire_after]

    def retired(self, now: datetime) -> list[PreviousSecret]:
        return [p for p in self.previous if now >= p.retire_after]


def retire_time(value: Any) -> datetime:
    """``retire_after`` as written in the connection: an ISO date (the links it signed
    work through that day, UTC) or an ISO date-time with its zone."""
    text = str(value).strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text) + timedelta(days=1), time(),
                                    UTC)
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"retire_after {text!r} is not an ISO date (2026-12-31) or date-"
                         f"time with its zone (2026-12-31T18:00+08:00)") from None
    if when.tzinfo is None:
        raise ValueError(f"retire_after {text!r} has no time zone (e.g. +08:00)")
    return when


def previous_secrets(raw: Any) -> tuple[PreviousSecret, ...]:
    """The connection's ``previous_secrets``: ``[{"secret": ..., "retire_after": ...}]``.

    A ``ValueError`` says which entry is wrong, never what its secret is."""
    if raw in (None, ""):
        return ()
    if not isinstance(raw, list):
        raise ValueError('must be a list of {"secret": ..., "retire_after": ...}')
    found = []
    for n, entry in enumerate(raw, 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("secret"), str) \
                or not entry["secret"] or "retire_after" not in entry:
            raise ValueError(f"entry {n} needs a non-empty \"secret\" and a \"retire_after\"")
        try:
            found.append(PreviousSecret(entry["secret"], retire_time(entry["retire_after"])))
        except ValueError as exc:
            raise ValueError(f"entry {n}: {exc}") from None
    return tuple(found)


def _keyring(keys: str | Keyring) -> Keyring:
    return keys if isinstance(keys, Keyring) else Keyring(keys)


def sign(keys: str | Keyring, claim: Claim) -> str:
    """The token of ``claim``, signed with the current secret: ``<payload>.<signature>``."""
    if not keys:
        raise ValueError("answer links need a secret")
    secret = _keyring(keys).current
    if claim.answer not in ANSWERS:
        raise ValueError(f"unknown answer {claim.answer!r}; one of {sorted(ANSWERS)}")
    body = json.dumps({"v": _VERSION, "t": claim.ticket_id, "a": claim.answer,
                       "r": claim.asked, "e": claim.expires}, separators=(",", ":"))
    payload = _b64(body.encode("utf-8"))
    return f"{payload}.{_mac(secret, payload)}"


def _signed_by(secrets: list[str], payload: str, signature: str) -> bool:
    return any(hmac.compare_digest(_mac(s, payload), signature) for s in secrets)


def verify(keys: str | Keyring, token: str, now: datetime) -> Claim:
    """The claim a token carries; ``LinkProblem`` when it is altered, foreign, expired or
    signed with a secret retired since."""
    payload, dot, signature = token.partition(".")
    if not dot or not payload or not signature or len(token) > 1000:
        raise LinkProblem("malformed", "the link is incomplete")
    keyring = keys if isinstance(keys, Keyring) else None
    accepted = keyring.accepted(now) if keyring else [str(keys)]
    retired_by = None
    if not _signed_by(accepted, payload, signature):
        retired_by = next((p for p in (keyring.retired(now) if keyring else [])
                           if _signed_by([p.secret], payload, signature)), None)
        if retired_by is None:
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
    if retired_by is not None:
        raise LinkProblem("retired", "the key that signed the link was retired on " +
                          retired_by.retire_after.astimezone(UTC).strftime(
                              "%Y-%m-%d %H:%M UTC"))
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
