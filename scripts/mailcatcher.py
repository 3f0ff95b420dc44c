"""The demo's mail catcher and SMS receiver: what the pipelines send, readable in a browser.

SMTP on 127.0.0.1:1025 keeps every message as ``<dir>/mail/NNNNN.eml``; SMS-gateway POSTs
to http://127.0.0.1:8026/sms land in ``<dir>/sms.jsonl`` (one JSON record per message: when,
the ``Idempotency-Key`` header, the body as sent). The mailbox at http://127.0.0.1:8026/:

- ``/``: every mail (newest first) with date, from, to, subject and attachments, then every
  SMS as a table (when, to, text, key);
- ``/mail/NNNNN``: one mail as a client shows it: its headers, the HTML body with inline
  images (``cid:`` links served from the message), the attachments to download, the plain
  text part and the raw ``.eml``;
- ``/api/mail`` and ``/api/sms``: the same as JSON, for scripts and tests.

Offline, standard library plus aiosmtpd; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import html
import json
import re
import threading
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote

from aiosmtpd.controller import Controller

NAME = re.compile(r"^\d{5}$")
STYLE = """
body{font-family:'Noto Sans CJK SC','Microsoft YaHei',Arial,sans-serif;color:#222;margin:16px}
h1{font-size:20px;margin:0 0 12px} h2{font-size:17px;margin:24px 0 8px}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{border-bottom:1px solid #e3e3e3;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#f4f6f8;font-weight:600} tr:hover td{background:#fafbfc}
a{color:#1a5fb4;text-decoration:none} a:hover{text-decoration:underline}
.muted{color:#777} .nowrap{white-space:nowrap} .att{font-size:12px;color:#555}
.hdr td:first-child{color:#666;width:110px;white-space:nowrap}
.bar a{margin-right:14px} iframe{width:100%;border:1px solid #ddd;min-height:200px}
pre{white-space:pre-wrap;background:#f6f6f6;padding:10px;font-size:13px}
"""


class Store:
    def __init__(self, root: Path):
        self.mail = root / "mail"
        self.mail.mkdir(parents=True, exist_ok=True)
        self.sms = root / "sms.jsonl"
        self.lock = threading.Lock()

    def save_mail(self, data: bytes) -> None:
        with self.lock:
            n = len(list(self.mail.glob("*.eml"))) + 1
            (self.mail / f"{n:05d}.eml").write_bytes(data)

    def save_sms(self, body: bytes, key: str | None) -> None:
        record = {"received": datetime.now(UTC).isoformat(timespec="seconds"),
                  "idempotency_key": key, "body": body.decode("utf-8", "replace").strip()}
        with self.lock, self.sms.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")

    def names(self) -> list[str]:
        return sorted((p.stem for p in self.mail.glob("*.eml")), reverse=True)

    def message(self, name: str) -> EmailMessage | None:
        path = self.mail / f"{name}.eml"
        if not NAME.match(name) or not path.is_file():
            return None
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg

    def raw(self, name: str) -> bytes | None:
        path = self.mail / f"{name}.eml"
        return path.read_bytes() if NAME.match(name) and path.is_file() else None

    def sms_records(self) -> list[dict[str, Any]]:
        if not self.sms.exists():
            return []
        records = []
        for line in self.sms.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                record = {"body": line}
            if not isinstance(record, dict) or "body" not in record:
                record = {"body": line}  # a line of the older format: the body alone
            records.append(_sms_fields(record))
        return records[::-1]


def _sms_fields(record: dict[str, Any]) -> dict[str, Any]:
    """The record with ``to`` and ``text`` read out of the body the gateway template made."""
    body = record.get("body")
    parsed: Any = body
    if isinstance(body, str):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
    to, text = "", body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    if isinstance(parsed, dict):
        value = parsed.get("to") or parsed.get("mobile") or parsed.get("phone") or ""
        to = ", ".join(value) if isinstance(value, list) else str(value)
        text = str(parsed.get("text") or parsed.get("content") or parsed.get("message") or text)
        record.setdefault("idempotency_key", parsed.get("id") or parsed.get("key"))
    return {**record, "to": to, "text": text}


# ------------------------------------------------------------------- one message
def parts(msg: EmailMessage) -> list[EmailMessage]:
    """Every leaf part, numbered by its position (the URL of a part is its index)."""
    return [p for p in msg.walk() if not p.is_multipart()]  # type: ignore[misc]


def attachments(msg: EmailMessage) -> list[tuple[int, str, str, int]]:
    """(index, filename, content type, size) of each part a reader would save."""
    found = []
    for i, part in enumerate(parts(msg)):
        disposition = part.get_content_disposition()
        if disposition == "attachment" or (part.get_filename() and not part["Content-ID"]
                                           and part.get_content_maintype() != "text"):
            payload = part.get_payload(decode=True) or b""
            found.append((i, part.get_filename() or f"part-{i}", part.get_content_type(),
                          len(payload)))
    return found


def summary(name: str, msg: EmailMessage) -> dict[str, Any]:
    date = msg["Date"]
    try:
        when = parsedate_to_datetime(str(date)).isoformat() if date else None
    except (TypeError, ValueError):
        when = None
    return {"id": name, "date": when, "from": str(msg["From"] or ""),
            "to": str(msg["To"] or ""), "cc": str(msg["Cc"] or ""),
            "subject": str(msg["Subject"] or ""), "message_id": str(msg["Message-ID"] or ""),
            "in_reply_to": str(msg["In-Reply-To"] or ""),
            "attachments": [{"filename": f, "content_type": t, "size": s,
                             "url": f"/mail/{name}/part/{i}"}
                            for i, f, t, s in attachments(msg)]}


def body_html(name: str, msg: EmailMessage) -> str:
    """The HTML body with ``cid:`` links pointing at the message's own parts."""
    part = msg.get_body(("html", "plain"))
    if part is None:
        return "<p><i>(no body)</i></p>"
    content = part.get_content()
    if part.get_content_subtype() != "html":
        return f"<pre>{html.escape(content)}</pre>"
    by_cid = {}
    for i, p in enumerate(parts(msg)):
        if p["Content-ID"]:
            by_cid[str(p["Content-ID"]).strip().strip("<>")] = i
    def link(m: re.Match[str]) -> str:
        cid = unquote(m.group(2))
        index = by_cid.get(cid)
        return f"{m.group(1)}/mail/{name}/part/{index}" if index is not None else m.group(0)
    return re.sub(r"""(["'(])cid:([^"')\s]+)""", link, content)


def _size(n: int) -> str:
    return f"{n / 1024:.0f} KB" if n >= 1024 else f"{n} B"


def page(title: str, body: str) -> bytes:
    return ("<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
            f"<body>{body}</body></html>").encode()


def _int(values: list[str] | None) -> int:
    """A page number from the query string; anything else is page 1."""
    try:
        return int((values or ["1"])[0])
    except ValueError:
        return 1


PAGE_SIZE = 100  # rows per page of the index; every mail and SMS is reachable by paging


def _page_of(items: list[Any], page: int) -> tuple[list[Any], int, int]:
    """The ``page``-th slice of ``items`` (1-based, clamped), its page number and the count."""
    pages = max(1, -(-len(items) // PAGE_SIZE))
    page = min(max(1, page), pages)
    return items[(page - 1) * PAGE_SIZE:page * PAGE_SIZE], page, pages


def _pager(what: str, param: str, page: int, pages: int, total: int, other: str) -> str:
    """'newest first · 101–200 of 1,078' with the links to the pages before and after."""
    if total == 0:
        return ""
    first = (page - 1) * PAGE_SIZE + 1
    last = min(page * PAGE_SIZE, total)
    links = []
    if page > 1:
        links.append(f"<a href='/?{param}={page - 1}{other}#{what}'>&larr; newer</a>")
    if page < pages:
        links.append(f"<a href='/?{param}={page + 1}{other}#{what}'>older &rarr;</a>")
    return (f"<p class='muted pager'>newest first &middot; {first:,}&ndash;{last:,} of "
            f"{total:,} &middot; page {page} of {pages} {' '.join(links)}</p>")


def index_page(store: Store, mail_page: int = 1, sms_page: int = 1) -> bytes:
    names = store.names()
    shown, mail_page, mail_pages = _page_of(names, mail_page)
    rows = []
    for name in shown:
        msg = store.message(name)
        if msg is None:
            continue
        s = summary(name, msg)
        att = "".join(f"<div class='att'>附件 attachment: <a href='{a['url']}'>"
                      f"{html.escape(a['filename'])}"
                      f"</a> ({_size(a['size'])})</div>" for a in s["attachments"])
        date = (s["date"] or "")[:19].replace("T", " ")
        rows.append(
            f"<tr><td class='nowrap muted'>{name}</td><td class='nowrap'>{html.escape(date)}"
            f"</td><td>{html.escape(s['from'])}</td><td>{html.escape(s['to'])}</td>"
            f"<td><a href='/mail/{name}'>{html.escape(s['subject'] or '(no subject)')}</a>"
            f"{att}</td></tr>")
    records = store.sms_records()
    sms_shown, sms_page, sms_pages = _page_of(records, sms_page)
    sms_rows = [
        f"<tr><td class='nowrap'>{html.escape(str(r.get('received') or '')[:19]).replace('T', ' ')}"
        f"</td><td>{html.escape(r['to'])}</td><td>{html.escape(r['text'])}</td>"
        f"<td class='muted'>{html.escape(str(r.get('idempotency_key') or ''))}</td></tr>"
        for r in sms_shown]
    body = (f"<h1>Demo mailbox</h1><p class='bar'><a href='#mail'>Mail ({len(names):,})</a>"
            f"<a href='#sms'>SMS ({len(records):,})</a><a href='/'>Refresh</a></p>"
            "<h2 id='mail'>Mail</h2>"
            + _pager("mail", "page", mail_page, mail_pages, len(names), f"&sms={sms_page}")
            + "<table><tr><th>#</th><th>Date</th><th>From</th><th>To</th>"
            "<th>Subject</th></tr>" + ("".join(rows) or "<tr><td colspan=5 class='muted'>"
                                       "No mail yet.</td></tr>") +
            "</table><h2 id='sms'>SMS</h2>"
            + _pager("sms", "sms", sms_page, sms_pages, len(records), f"&page={mail_page}")
            + "<table><tr><th>Received</th><th>To</th><th>Text</th>"
            "<th>Key</th></tr>" + ("".join(sms_rows) or "<tr><td colspan=4 class='muted'>"
                                   "No SMS yet.</td></tr>") + "</table>")
    return page("Demo mailbox", body)


def message_page(name: str, msg: EmailMessage) -> bytes:
    s = summary(name, msg)
    headers = [("From", s["from"]), ("To", s["to"]), ("Cc", s["cc"]),
               ("Date", str(msg["Date"] or "")), ("Subject", s["subject"]),
               ("Message-ID", s["message_id"]), ("In-Reply-To", s["in_reply_to"])]
    rows = "".join(f"<tr><td>{k}</td><td>{html.escape(v)}</td></tr>" for k, v in headers if v)
    att = "".join(f"<li><a href='{a['url']}' download='{html.escape(a['filename'])}'>"
                  f"{html.escape(a['filename'])}</a> <span class='muted'>{a['content_type']}, "
                  f"{_size(a['size'])}</span></li>" for a in s["attachments"])
    plain = msg.get_body(("plain",))
    links = ["<a href='/'>← Mailbox</a>", f"<a href='/mail/{name}/raw'>Raw .eml</a>"]
    if plain is not None and msg.get_body(("html",)) is not None:
        links.append(f"<a href='/mail/{name}/text'>Plain text</a>")
    # The mail's HTML goes into a sandboxed frame (no scripts of its own), sized to its
    # content so the whole mail reads (and screenshots) as one page.
    body = (f"<p class='bar'>{''.join(links)}</p><h1>{html.escape(s['subject'])}</h1>"
            f"<table class='hdr'>{rows}</table>"
            + (f"<h2>Attachments</h2><ul>{att}</ul>" if att else "") +
            f"<iframe id='body' sandbox='allow-same-origin allow-popups' "
            f"src='/mail/{name}/body' title='mail body' onload=\"this.style.height="
            f"(this.contentDocument.documentElement.scrollHeight+20)+'px'\"></iframe>")
    return page(s["subject"] or name, body)


# ------------------------------------------------------------------------ servers
class SmtpHandler:
    def __init__(self, store: Store):
        self.store = store

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        self.store.save_mail(envelope.original_content or envelope.content)
        return "250 OK"


def make_http(store: Store) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            store.save_sms(body, self.headers.get("Idempotency-Key"))
            self._send(200, b'{"status":"accepted"}', "application/json")

        def do_GET(self) -> None:  # noqa: N802
            path, _, query = self.path.partition("?")
            if path == "/":
                args = parse_qs(query)
                return self._send(200, index_page(store, _int(args.get("page")),
                                                  _int(args.get("sms"))),
                                  "text/html; charset=utf-8")
            if path == "/api/mail":
                found = [summary(n, m) for n in store.names()
                         if (m := store.message(n)) is not None]
                return self._json(found)
            if path == "/api/sms":
                return self._json(store.sms_records())
            m = re.match(r"^/mail/(\d{5})(?:/(body|raw|text)|/part/(\d+))?$", path)
            msg = store.message(m.group(1)) if m else None
            if m is None or msg is None:
                return self._send(404, b"not found", "text/plain")
            name, view, index = m.group(1), m.group(2), m.group(3)
            if index is not None:
                return self._part(name, msg, int(index))
            if view == "body":
                return self._send(200, body_html(name, msg).encode("utf-8"),
                                  "text/html; charset=utf-8")
            if view == "raw":
                return self._send(200, store.raw(name) or b"", "message/rfc822",
                                  {"Content-Disposition": f'attachment; filename="{name}.eml"'})
            if view == "text":
                plain = msg.get_body(("plain",))
                text = plain.get_content() if plain is not None else ""
                return self._send(200, text.encode("utf-8"), "text/plain; charset=utf-8")
            return self._send(200, message_page(name, msg), "text/html; charset=utf-8")

        def _part(self, name: str, msg: EmailMessage, index: int) -> None:
            leaves = parts(msg)
            if not 0 <= index < len(leaves):
                return self._send(404, b"no such part", "text/plain")
            part = leaves[index]
            payload = part.get_payload(decode=True) or b""
            headers = {}
            filename = part.get_filename()
            if filename and not part["Content-ID"]:
                headers["Content-Disposition"] = (f"attachment; filename*=UTF-8''"
                                                  f"{quote(filename)}")
            self._send(200, payload, part.get_content_type(), headers)

        def _json(self, value: Any) -> None:
            self._send(200, json.dumps(value, ensure_ascii=False).encode("utf-8"),
                       "application/json; charset=utf-8")

        def _send(self, code: int, body: bytes, ctype: str,
                  headers: dict[str, str] | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", default=".run/outbox")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (0.0.0.0 inside a container)")
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--http-port", type=int, default=8026)
    args = parser.parse_args()
    store = Store(Path(args.dir))
    controller = Controller(SmtpHandler(store), hostname=args.host, port=args.smtp_port)
    controller.start()
    server = ThreadingHTTPServer((args.host, args.http_port), make_http(store))
    print(f"SMTP {args.host}:{args.smtp_port}, inbox http://{args.host}:{args.http_port}/",
          flush=True)
    try:
        server.serve_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
