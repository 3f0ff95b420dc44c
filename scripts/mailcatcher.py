"""The demo's mail catcher and SMS receiver: what the pipelines send lands on disk.

SMTP on 127.0.0.1:1025 writes every message to ``<dir>/mail/NNNN.eml``; an HTTP endpoint on
127.0.0.1:8026 takes SMS-gateway POSTs into ``<dir>/sms.jsonl``, and serves an index of both
at http://127.0.0.1:8026/ (newest first, each mail viewable as HTML).
"""

from __future__ import annotations

import argparse
import email
import email.policy
import html
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aiosmtpd.controller import Controller


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

    def save_sms(self, body: bytes) -> None:
        with self.lock, self.sms.open("ab") as fh:
            fh.write(body.strip() + b"\n")


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
            store.save_sms(body)
            self._send(200, b'{"status":"accepted"}', "application/json")

        def do_GET(self) -> None:  # noqa: N802
            if self.path.startswith("/mail/"):
                path = store.mail / Path(self.path).name
                if path.is_file():
                    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                    part = msg.get_body(("html", "plain"))
                    content = part.get_content() if part else ""
                    self._send(200, content.encode("utf-8"), "text/html; charset=utf-8")
                    return
                self._send(404, b"not found", "text/plain")
                return
            rows = []
            for path in sorted(store.mail.glob("*.eml"), reverse=True)[:300]:
                msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                rows.append(f"<tr><td><a href='/mail/{path.name}'>{path.stem}</a></td>"
                            f"<td>{html.escape(str(msg['To']))}</td>"
                            f"<td>{html.escape(str(msg['Subject']))}</td></tr>")
            sms = store.sms.read_text(encoding="utf-8").splitlines()[-100:] \
                if store.sms.exists() else []
            page = ("<meta charset='utf-8'><h1>Demo mailbox</h1><table border=1 cellpadding=4>"
                    "<tr><th>#</th><th>To</th><th>Subject</th></tr>" + "".join(rows) +
                    "</table><h2>SMS</h2><pre>" +
                    html.escape("\n".join(reversed(sms))) + "</pre>")
            self._send(200, page.encode("utf-8"), "text/html; charset=utf-8")

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
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
