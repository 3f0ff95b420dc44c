"""Messages the pipelines send, as plain data: composed by pure code, sent by the senders.

A message carries a ``key``: the idempotency key of the action that sent it. The e-mail
sender turns it into a deterministic ``Message-ID`` (so a mail client shows a re-send as the
same message) and the apply step records it on the ticket, so a retried run does not send
it again.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mime_type: str = "application/octet-stream"
    inline_id: str | None = None  # set for images shown in the HTML body (cid:<inline_id>)


@dataclass(frozen=True)
class Email:
    to: tuple[str, ...]
    subject: str
    html: str
    key: str
    text: str = ""
    cc: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    # Message-IDs (with <>) this mail follows up, oldest first: a client threads it under them.
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sms:
    to: tuple[str, ...]  # phone numbers
    text: str
    key: str
