"""A fault-injecting HTTP proxy on loopback, in front of the real desk.

The real RT cannot be made to time out, drop a connection or answer 429 on demand, and
those are exactly the failures the adapter's retry and idempotency rules are for. This
proxy forwards every request to RT unchanged, except the next N that match a fault:

- ``drop``: close the connection without forwarding (the desk never saw the request);
- ``delay``: wait ``seconds`` (past the client's timeout), then forward anyway, so the
  write lands after the client gave up;
- ``status``: answer ``status`` itself (500, 503, 429 with ``Retry-After``) without
  forwarding;
- ``drop_response``: forward, let RT apply it, then close the connection without
  answering (the write happened; the client does not know).

Every request is recorded with the fault it met (``requests``), so a test can say how many
writes reached the desk.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import urlsplit

Fault = Literal["drop", "delay", "status", "drop_response"]
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailers", "transfer-encoding", "upgrade", "content-length", "host"}


@dataclass
class _Rule:
    fault: Fault
    times: int
    method: str | None
    path: re.Pattern[str] | None
    seconds: float = 0.0
    status: int = 500
    retry_after: str | None = None
    then: Callable[[], object] | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.times > 0 and (self.method is None or self.method == method)
                and (self.path is None or bool(self.path.search(path))))


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    fault: str | None  # None: forwarded normally
    forwarded: bool  # did the request reach the desk?
    status: int | None  # what the desk answered, when it did


class FaultProxy:
    """``with FaultProxy(upstream) as proxy:`` then point the client at ``proxy.url``."""

    def __init__(self, upstream: str, host: str = "127.0.0.1", *,
                 tls: ssl.SSLContext | None = None) -> None:
        """``tls``: serve HTTPS with this server context (a desk behind TLS)."""
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self._lock = threading.Condition()
        self._in_flight = 0
        self._rules: list[_Rule] = []
        self._seen: list[Seen] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass  # quiet: pytest shows what matters

            def _handle(self) -> None:
                with proxy._lock:
                    proxy._in_flight += 1
                try:
                    self._proxy()
                finally:
                    with proxy._lock:
                        proxy._in_flight -= 1
                        proxy._lock.notify_all()

            def _proxy(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                rule = proxy._take(self.command, self.path)
                fault = rule.fault if rule else None
                if fault == "drop":
                    proxy._record(Seen(self.command, self.path, fault, False, None))
                    self._drop()
                    return
                if rule is not None and fault == "status":
                    proxy._record(Seen(self.command, self.path, fault, False, None))
                    self._answer(rule.status, [("Content-Type", "application/json")] + (
                        [("Retry-After", rule.retry_after)] if rule.retry_after else []),
                        b'{"message":"injected fault"}')
                    return
                if rule is not None and fault == "delay":
                    time.sleep(rule.seconds)  # the fault itself: the client must time out
                status, headers, payload = proxy._forward(self.command, self.path,
                                                          self.headers.items(), body)
                proxy._record(Seen(self.command, self.path, fault, True, status))
                if rule is not None and rule.then is not None:
                    rule.then()  # e.g. a person edits the ticket before the client learns more
                if fault == "drop_response":
                    self._drop()
                    return
                try:
                    self._answer(status, headers, payload)
                except OSError:
                    pass  # the client gave up (delay): the desk applied it regardless

            def _answer(self, status: int, headers: list[tuple[str, str]],
                        payload: bytes) -> None:
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(payload)
                self.close_connection = True

            def _drop(self) -> None:
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle  # noqa: N815

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self._scheme = "https" if tls else "http"
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{self._scheme}://{host!s}:{port}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- control -----------------------------------------------------------------------

    def inject(self, fault: Fault, *, times: int = 1, method: str | None = None,
               path: str | None = None, seconds: float = 0.0, status: int = 500,
               retry_after: float | None = None, then: Callable[[], object] | None = None,
               ) -> None:
        """Apply ``fault`` to the next ``times`` requests matching method and path regex.

        ``then`` runs after a forwarded request reached the desk, before the client hears
        anything: the moment a concurrent edit does the most harm.
        """
        with self._lock:
            self._rules.append(_Rule(fault, times, method, re.compile(path) if path else None,
                                     seconds, status,
                                     None if retry_after is None else f"{retry_after:g}",
                                     then))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._seen.clear()

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Block until no request is being handled (a delayed write has reached the desk)."""
        with self._lock:
            if not self._lock.wait_for(lambda: self._in_flight == 0, timeout):
                raise TimeoutError(f"proxy still busy after {timeout} s")

    @property
    def requests(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def reached_desk(self, method: str, path: str | None = None) -> list[Seen]:
        """The requests with ``method`` (and path regex) that the desk actually received."""
        pattern = re.compile(path) if path else None
        return [s for s in self.requests if s.forwarded and s.method == method
                and (pattern is None or pattern.search(s.path))]

    # -- internals ---------------------------------------------------------------------

    def _take(self, method: str, path: str) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path):
                    rule.times -= 1
                    return rule
        return None

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self._seen.append(seen)

    def _forward(self, method: str, path: str, headers: Iterable[tuple[str, str]],
                 body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=300)
        try:
            out = {k: v for k, v in headers if k.lower() not in HOP_BY_HOP}
            out["Host"] = f"{self.upstream_host}:{self.upstream_port}"
            out["Content-Length"] = str(len(body))
            conn.request(method, path, body=body or None, headers=out)
            resp = conn.getresponse()
            payload = resp.read()
            kept = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
            return resp.status, kept, payload
        finally:
            conn.close()
