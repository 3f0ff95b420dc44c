"""The RT HTTP client under injected failures: bounded retries, no blind POST retries,
Retry-After, the concurrency cap, error mapping, and no credentials in logs.

The failures come from ``tests/support/fault_proxy.py`` in front of a tiny loopback
upstream (the real desk is not needed to test HTTP behaviour); waits between retries are
recorded through the client's ``sleep`` hook instead of slept.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from incident_ops.desk.port import (
    BadQuery,
    DeskAuthError,
    RejectedChange,
    StaleTicket,
    TicketNotFound,
    TransientDeskError,
)
from incident_ops.desk.rt.client import AmbiguousWrite, RetryPolicy, RTClient
from tests.support import free_port
from tests.support.fault_proxy import FaultProxy

SECRET = "s3cr3t-pässword"


class Upstream:
    """Answers 200 JSON; /status/N answers N; /slow holds the request and counts overlap."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.hits: list[str] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                with upstream.lock:
                    upstream.hits.append(f"{self.command} {self.path}")
                    upstream.in_flight += 1
                    upstream.max_in_flight = max(upstream.max_in_flight, upstream.in_flight)
                try:
                    if "/slow" in self.path:
                        time.sleep(0.15)  # the work being overlapped, not a test sync
                finally:
                    # Out of flight before the answer is written: counted after it, the
                    # client could read the answer and send its next request first (3 for a
                    # cap of 2 on a loaded machine).
                    with upstream.lock:
                        upstream.in_flight -= 1
                status = int(self.path.rsplit("/", 1)[1]) if "/status/" in self.path else 200
                body = json.dumps({"message": f"answer {status}"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _handle  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    yield up
    up.server.shutdown()
    up.server.server_close()


@pytest.fixture
def proxy(upstream: Upstream) -> Iterator[FaultProxy]:
    with FaultProxy(upstream.url) as p:
        yield p


def make_client(url: str, waits: list[float], **kw: object) -> RTClient:
    options: dict[str, object] = {"timeout": (1.0, 0.5), "retry": RetryPolicy(
        attempts=4, backoff=0.1, backoff_cap=1.0, retry_after_cap=5.0)}
    options.update(kw)
    return RTClient(url, user="root", password=SECRET, sleep=waits.append, web_session=False,
                    **options)  # type: ignore[arg-type]


def test_a_read_is_retried_through_5xx_with_growing_jittered_backoff(proxy: FaultProxy) -> None:
    waits: list[float] = []
    client = make_client(proxy.url, waits)
    proxy.inject("status", times=3, status=503)
    assert client.get("/ticket/1").status_code == 200
    assert client.requests_made == 4 and client.retries_made == 3
    assert len(waits) == 3
    assert all(0 <= w <= cap for w, cap in zip(waits, (0.1, 0.2, 0.4), strict=True))


def test_retry_after_is_honoured_and_capped(proxy: FaultProxy) -> None:
    waits: list[float] = []
    client = make_client(proxy.url, waits)
    proxy.inject("status", times=1, status=429, retry_after=2)
    proxy.inject("status", times=1, status=429, retry_after=600)
    assert client.get("/tickets").status_code == 200
    assert waits == [2.0, 5.0]


def test_a_timed_out_read_is_retried(proxy: FaultProxy, upstream: Upstream) -> None:
    waits: list[float] = []
    client = make_client(proxy.url, waits)
    proxy.inject("delay", times=1, seconds=1.5)
    assert client.get("/ticket/2").status_code == 200
    assert client.requests_made == 2


def test_an_unanswered_post_is_not_sent_again(proxy: FaultProxy, upstream: Upstream) -> None:
    waits: list[float] = []
    client = make_client(proxy.url, waits)
    proxy.inject("drop_response", times=1, method="POST")
    with pytest.raises(AmbiguousWrite):
        client.request("POST", "/ticket", kind="write", json={"Subject": "x"})
    assert client.requests_made == 1 and upstream.hits == ["POST /REST/2.0/ticket"]


def test_a_post_that_got_a_429_is_retried(proxy: FaultProxy, upstream: Upstream) -> None:
    client = make_client(proxy.url, [])
    proxy.inject("status", times=1, status=429, retry_after=0)
    client.request("POST", "/ticket/1/comment", kind="write", json={"Content": "c"})
    assert upstream.hits == ["POST /REST/2.0/ticket/1/comment"]


def test_a_refused_connection_is_retried_even_for_a_post_then_given_up() -> None:
    waits: list[float] = []
    client = make_client(f"http://127.0.0.1:{free_port()}", waits)
    with pytest.raises(TransientDeskError) as caught:
        client.request("POST", "/ticket", kind="write", json={})
    assert not isinstance(caught.value, AmbiguousWrite)
    assert client.requests_made == 4 and len(waits) == 3


@pytest.mark.parametrize(("status", "kind", "error"), [
    (401, "read", DeskAuthError), (403, "write", DeskAuthError), (404, "read", TicketNotFound),
    (412, "write", StaleTicket), (400, "search", BadQuery), (400, "write", RejectedChange),
    (422, "write", RejectedChange)])
def test_http_errors_become_port_errors(proxy: FaultProxy, status: int, kind: str,
                                        error: type[Exception]) -> None:
    client = make_client(proxy.url, [])
    with pytest.raises(error) as caught:
        client.request("PUT" if kind == "write" else "GET", f"/status/{status}",
                       kind=kind, ticket_id="42")  # type: ignore[arg-type]
    assert client.requests_made == 1  # none of these is retried
    if error in (TicketNotFound, StaleTicket, RejectedChange):
        assert caught.value.ticket_id == "42"  # type: ignore[attr-defined]


def test_giving_up_after_bounded_retries(proxy: FaultProxy) -> None:
    client = make_client(proxy.url, [])
    proxy.inject("status", times=10, status=500)
    with pytest.raises(TransientDeskError, match="gave up after 4 attempts"):
        client.get("/ticket/1")
    assert client.requests_made == 4


def test_concurrency_is_capped_per_client(upstream: Upstream) -> None:
    client = make_client(upstream.url, [], max_concurrency=2)
    threads = [threading.Thread(target=client.get, args=("/slow",)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert client.requests_made == 8 and upstream.max_in_flight == 2


def test_credentials_never_reach_logs_or_errors(proxy: FaultProxy,
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(proxy.url, [])
    proxy.inject("status", times=10, status=500)
    with pytest.raises(TransientDeskError) as caught:
        client.get("/ticket/1")
    token_client = RTClient(proxy.url, token=SECRET)
    assert SECRET not in caplog.text and SECRET not in str(caught.value)
    assert SECRET not in repr(client) and SECRET not in repr(token_client)
    assert "retry" in caplog.text  # the retries themselves are logged


def test_credentials_in_the_url_are_moved_out_of_it(proxy: FaultProxy) -> None:
    host = proxy.url.removeprefix("http://")
    client = RTClient(f"http://root:{SECRET}@{host}", web_session=False)
    assert SECRET not in client.api and client.api == f"{proxy.url}/REST/2.0"
    assert client.session.auth == ("root", SECRET)
    assert client.get("/rt").status_code == 200
