"""An HTTP SMS gateway stand-in on loopback: records every request, fails on demand.

There is no real SMS gateway to run locally, and the failures a sender must survive (500s,
429 with ``Retry-After``) cannot be provoked on a real one anyway: this receiver is for
exactly that. It answers 200 with a JSON receipt unless told to fail the next N requests.
``HEAD`` answers 200 and is recorded too (``SmsGatewayHook.test_connection`` uses it).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SEND_PATH = "/sms/send"


@dataclass(frozen=True)
class SmsRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    status: int  # what the receiver answered

    @property
    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    @property
    def delivered(self) -> bool:
        return self.method in ("POST", "PUT") and 200 <= self.status < 300

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class SmsReceiver:
    """A threaded ``http.server`` on 127.0.0.1:<free port>."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._lock = threading.Condition()
        self._requests: list[SmsRequest] = []
        self._failures: list[tuple[int, str | None]] = []  # (status, Retry-After) queue
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, retry_after = receiver._next_answer(self.command)
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver._record(SmsRequest(self.command, self.path, headers, body, status))
                payload = b""
                if self.command != "HEAD":
                    answer = {"ok": status < 300, "status": status}
                    payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.end_headers()
                if payload:
                    self.wfile.write(payload)

            do_POST = do_PUT = do_HEAD = _handle  # noqa: N815 - http.server's naming

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # keep pytest output clean

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="sms-receiver", daemon=True
        )

    # -------------------------------------------------------------- lifecycle
    def start(self) -> SmsReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> SmsReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{SEND_PATH}"

    def connection_json(self, **extra: Any) -> str:
        """An Airflow ``sms_gateway`` connection (JSON form) pointing here."""
        return json.dumps(
            {"conn_type": "sms_gateway", "host": self.url, "extra": {"timeout": 5, **extra}}
        )

    # ---------------------------------------------------------------- control
    def fail_next(self, count: int, status: int = 500, retry_after: str | None = None) -> None:
        """Answer the next ``count`` POST/PUT requests with ``status`` instead of 200."""
        with self._lock:
            self._failures.extend([(status, retry_after)] * count)

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._failures.clear()

    def _next_answer(self, method: str) -> tuple[int, str | None]:
        with self._lock:
            if method in ("POST", "PUT") and self._failures:
                return self._failures.pop(0)
        return 200, None

    def _record(self, request: SmsRequest) -> None:
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()

    # ---------------------------------------------------------------- reading
    @property
    def requests(self) -> list[SmsRequest]:
        """Every request, failed tries and HEADs included, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def delivered(self) -> list[SmsRequest]:
        """The POST/PUT requests answered 2xx: the messages a real gateway would send."""
        return [r for r in self.requests if r.delivered]

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[SmsRequest]:
        """Block until ``count`` messages were delivered; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                delivered = [r for r in self._requests if r.delivered]
                remaining = deadline - time.monotonic()
                if len(delivered) >= count or remaining <= 0:
                    break
                self._lock.wait(remaining)
        if len(delivered) < count:
            raise AssertionError(
                f"expected {count} delivered SMS within {timeout} s, got {len(delivered)} "
                f"(requests: {[(r.method, r.status) for r in self.requests]})"
            )
        return delivered
