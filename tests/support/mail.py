"""An SMTP server on loopback for tests (aiosmtpd), keeping every message it receives.

Messages are parsed into ``email.message.EmailMessage`` (modern policy: decoded headers,
``get_body()``, ``iter_attachments()``). Waiting for mail uses a condition variable with a
deadline: a test wakes as soon as the message arrives and fails clearly when it does not.
``save_html_view`` turns a received mail into a page a browser shows as a mail client would.
"""

from __future__ import annotations

import email.policy
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from tests.support import free_port


@dataclass(frozen=True)
class ReceivedMail:
    envelope_from: str
    envelope_to: tuple[str, ...]  # every RCPT TO, so Bcc recipients count too
    message: EmailMessage
    raw: bytes  # as transmitted, to check encodings the parser hides


class Mailbox:
    """Everything the server received, safe to read from the test thread.

    ``refuse()`` makes the server answer every DATA with a temporary failure (451) until
    ``accept()``, the way a real server does when its queue is full or its disk is: the
    mail is not taken, and the sender must try again later.
    """

    def __init__(self) -> None:
        self._received: list[ReceivedMail] = []
        self._changed = threading.Condition()
        self.refusing: str | None = None
        self.refused = 0  # DATA commands answered with the refusal
        # Another process (a DAG run under test) can switch the refusal on and off: the
        # server refuses while this file exists.
        self.switch: Path | None = None

    def refuse(self, reply: str = "451 4.3.0 Mail server temporarily busy, try again later"
               ) -> None:
        self.refusing = reply

    def accept(self) -> None:
        self.refusing = None

    def refusal(self) -> str | None:
        if self.refusing:
            return self.refusing
        if self.switch is not None and self.switch.exists():
            return "451 4.3.0 Mail server temporarily busy, try again later"
        return None

    def add(self, mail: ReceivedMail) -> None:
        with self._changed:
            self._received.append(mail)
            self._changed.notify_all()

    def clear(self) -> None:
        with self._changed:
            self._received.clear()
            self.refusing = None
            self.refused = 0
            self.switch = None

    @property
    def received(self) -> list[ReceivedMail]:
        with self._changed:
            return list(self._received)

    @property
    def messages(self) -> list[EmailMessage]:
        return [mail.message for mail in self.received]

    def __len__(self) -> int:
        with self._changed:
            return len(self._received)

    def _matching(
        self, to: str | None, subject: str | None, subject_contains: str | None
    ) -> list[EmailMessage]:
        found = []
        for mail in self._received:
            if to is not None and to.lower() not in {r.lower() for r in mail.envelope_to}:
                continue
            mail_subject = str(mail.message.get("Subject", ""))
            if subject is not None and mail_subject != subject:
                continue
            if subject_contains is not None and subject_contains not in mail_subject:
                continue
            found.append(mail.message)
        return found

    def find(
        self, *, to: str | None = None, subject: str | None = None,
        subject_contains: str | None = None,
    ) -> list[EmailMessage]:
        """Messages for recipient ``to`` (envelope) with that subject, in arrival order."""
        with self._changed:
            return self._matching(to, subject, subject_contains)

    def wait_for(
        self, count: int = 1, *, to: str | None = None, subject: str | None = None,
        subject_contains: str | None = None, timeout: float = 10.0,
    ) -> list[EmailMessage]:
        """Block until ``count`` matching messages arrived; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = self._matching(to, subject, subject_contains)
                remaining = deadline - time.monotonic()
                if len(found) >= count or remaining <= 0:
                    break
                self._changed.wait(remaining)
            if len(found) < count:
                seen = [(m.envelope_to, str(m.message.get("Subject", ""))) for m in self._received]
                raise AssertionError(
                    f"expected {count} message(s) to={to!r} subject={subject!r} "
                    f"subject_contains={subject_contains!r} within {timeout} s, got "
                    f"{len(found)}; mailbox holds {seen}"
                )
            return found

    def one(self, **criteria: Any) -> EmailMessage:
        """The single message matching ``criteria`` (as for ``wait_for``); fails on 0 or >1."""
        found = self.wait_for(1, **criteria)
        assert len(found) == 1, f"expected exactly one message for {criteria}, got {len(found)}"
        return found[0]


class _Handler:
    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox
        self._parser = BytesParser(policy=email.policy.default)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        refusal = self.mailbox.refusal()
        if refusal:
            self.mailbox.refused += 1
            return refusal
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        message = self._parser.parsebytes(raw)
        assert isinstance(message, EmailMessage)
        self.mailbox.add(
            ReceivedMail(envelope.mail_from, tuple(envelope.rcpt_tos), message, bytes(raw))
        )
        return "250 Message accepted for delivery"


class SmtpTestServer:
    """aiosmtpd on 127.0.0.1 (a free port unless given), plain SMTP, no auth."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.mailbox = Mailbox()
        # SMTPUTF8 advertised so a sender that needs it is not refused; ours does not.
        self._controller = Controller(
            _Handler(self.mailbox), hostname=host, port=self.port, enable_SMTPUTF8=True
        )

    def start(self) -> SmtpTestServer:
        self._controller.start()  # returns once the server answers, or raises
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpTestServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def connection_uri(self, from_email: str) -> str:
        """An Airflow ``smtp`` connection URI for this server (the SMTP provider's extras)."""
        query = urllib.parse.urlencode(
            {
                "disable_ssl": "true",
                "disable_tls": "true",
                "from_email": from_email,
                "timeout": "10",
                "retry_limit": "0",
            }
        )
        return f"smtp://{self.host}:{self.port}?{query}"


def save_html_view(message: EmailMessage, folder: Path) -> Path:
    """Write ``message``'s HTML body as a page a browser can open, the way a mail client
    shows it: every inline part saved as a file and its ``cid:`` links pointed at the file.

    A ``cid:`` with no matching part is left as it is, so the browser reports the image as
    broken instead of the view hiding it.
    """
    body = message.get_body(preferencelist=("html",))
    if body is None:
        raise AssertionError(f"mail {message['Subject']!r} has no text/html part")
    html = body.get_content()
    folder.mkdir(parents=True, exist_ok=True)
    for n, part in enumerate(message.walk()):
        cid = str(part.get("Content-ID") or "").strip().strip("<>")
        if not cid or part.is_multipart():
            continue
        name = f"part{n}-{re.sub(r'[^A-Za-z0-9.]+', '_', part.get_filename() or 'inline')}"
        (folder / name).write_bytes(part.get_payload(decode=True) or b"")
        html = html.replace(f"cid:{cid}", name)
    page = folder / "mail.html"
    page.write_text(html, encoding="utf-8")
    return page
