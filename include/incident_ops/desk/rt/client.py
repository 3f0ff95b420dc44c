"""The HTTP client for RT's REST2 API: timeouts, bounded retries, a concurrency cap, errors.

Everything that is about HTTP rather than about tickets lives here, so the adapter reads as
ticket logic. What the client guarantees:

- every attempt has a (connect, read) timeout and holds one slot of a semaphore shared by
  all threads using this client, so automation never floods the desk;
- transient failures (connection refused/reset/dropped, timeouts, 5xx, 429) are retried a
  bounded number of times with exponential backoff and full jitter; ``Retry-After`` is
  honoured up to a cap;
- a request that may have been applied although we saw no answer (a POST whose connection
  dropped after sending, or that timed out or got a 5xx) is **not** repeated: the client
  raises ``TransientDeskError`` with ``ambiguous=True`` and the adapter decides (a create
  looks its idempotency key up first). PUT and GET are repeated: writing the same values
  twice changes nothing in RT;
- HTTP errors become the port's exceptions; credentials never reach a log line or message;
- with a user and password it also logs in to RT's web UI once and sends the session
  cookie: RT checks a password with bcrypt on every REST2 call (~180 ms each here), a
  session in a few ms. The Authorization header is still sent as the fallback.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from incident_ops.desk.port import (
    BadQuery,
    DeskAuthError,
    DeskError,
    RejectedChange,
    StaleTicket,
    TicketNotFound,
    TransientDeskError,
    call_deadline,
)
from incident_ops.desk.retry import RetryPolicy, retry_after

log = logging.getLogger(__name__)

Kind = Literal["read", "search", "write"]
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
WEB_SESSION_SECONDS = 1800.0  # log in again after this, in case RT cleaned the session


class AmbiguousWrite(TransientDeskError):
    """A write may or may not have been applied: no usable answer came back.

    ``still_running`` is True when the desk may still be working on it (a timeout or a
    dropped connection), False when it answered (a 5xx: whatever it did is done).
    """

    ambiguous = True

    def __init__(self, message: str, *, ticket_id: str | None = None,
                 still_running: bool = True) -> None:
        super().__init__(message, ticket_id=ticket_id)
        self.still_running = still_running


class SlowAnswer(TransientDeskError):
    """The desk did not answer a read within its read timeout, and the caller asked to hear
    of it at once (``on_read_timeout="raise"``) to ask for less rather than the same again."""


class RTClient:
    """A ``requests.Session`` bound to one RT's ``/REST/2.0`` with retries and a slot cap."""

    def __init__(
        self,
        base_url: str,
        *,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        verify: bool | str = True,
        timeout: tuple[float, float] = (5.0, 60.0),
        retry: RetryPolicy | None = None,
        max_concurrency: int = 4,
        web_session: bool = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit(base_url.rstrip("/"))
        if parts.username is not None:  # user:password@host: move it out of every URL we log
            user = user or unquote(parts.username)
            password = password or unquote(parts.password or "")
            host = parts.hostname or ""
            parts = parts._replace(netloc=host + (f":{parts.port}" if parts.port else ""))
        root = urlunsplit(parts)
        self.api = root if root.endswith("/REST/2.0") else root + "/REST/2.0"
        self.web_root = self.api.removesuffix("/REST/2.0")
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.user = user
        self._sleep = sleep
        self._slots = threading.BoundedSemaphore(max(1, max_concurrency))
        self._lock = threading.Lock()
        self.requests_made = 0  # every HTTP attempt, retries included (benchmarks read it)
        self.retries_made = 0
        self.session = requests.Session()
        # Passed on every request too: requests lets $REQUESTS_CA_BUNDLE / $CURL_CA_BUNDLE
        # override a session's verify=False (psf/requests#3829), so "verify_tls": false
        # would silently still verify wherever those variables are set.
        self.session.verify = self.verify = verify
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(1, max_concurrency),
                              max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["Accept"] = "application/json"
        if token:
            self.session.headers["Authorization"] = f"token {token}"
        elif user is not None:
            self.session.auth = (user, password or "")
        # RT checks a password or token with bcrypt (cost 12: ~180 ms) on EVERY REST2 call;
        # a web session cookie is checked in ~5 ms. REST2 tries the cookie first and falls
        # back to the Authorization header we keep sending, so a lost session only costs
        # speed. Only possible with a password (a token cannot log in to the web UI).
        self._web_login: tuple[str, str] | None = (
            (user, password) if web_session and user and password and not token else None)
        self._session_until = 0.0

    def __repr__(self) -> str:  # never shows the credentials
        return f"RTClient({self.api!r}, user={self.user!r})"

    def close(self) -> None:
        self.session.close()

    def _ensure_web_session(self) -> None:
        if self._web_login is None or time.monotonic() < self._session_until:
            return
        with self._lock:
            if time.monotonic() < self._session_until:
                return
            self._session_until = time.monotonic() + WEB_SESSION_SECONDS
            self.requests_made += 1
        user, password = self._web_login
        try:
            with self._slots:
                resp = self.session.post(f"{self.web_root}/NoAuth/Login.html",
                                         data={"user": user, "pass": password},
                                         timeout=self.timeout, allow_redirects=False,
                                         verify=self.verify)
            if not any(c.name.startswith("RT_SID_") for c in self.session.cookies):
                log.info("no RT web session (HTTP %s): using the Authorization header only",
                         resp.status_code)
                self._web_login = None
        except requests.RequestException as exc:
            log.info("RT web login failed (%s): using the Authorization header only",
                     type(exc).__name__)
            self._session_until = 0.0  # try again on the next request

    def pause(self, retry: int) -> None:
        """Back off before the caller's own retry number ``retry`` (same policy as ours)."""
        self._sleep(self.retry.delay(retry))

    def count_retry(self) -> None:
        """A caller's own retry of a request (a slow page asked for again, smaller)."""
        with self._lock:
            self.retries_made += 1

    def reset_counters(self) -> None:
        with self._lock:
            self.requests_made = 0
            self.retries_made = 0

    # -- the one entry point ------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        kind: Kind = "read",
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        ticket_id: str | None = None,
        repeat_unanswered: bool | None = None,
        read_timeout: float | None = None,
        on_read_timeout: Literal["retry", "raise"] = "retry",
    ) -> requests.Response:
        """Send with retries and return a 2xx response, or raise a ``DeskError``.

        ``repeat_unanswered`` (default: for idempotent methods) allows sending again after
        an attempt that may have been applied; without it such a failure raises
        ``AmbiguousWrite`` for the caller to resolve. ``read_timeout`` replaces the
        client's for this call (still cut to the deadline); ``on_read_timeout="raise"``
        raises ``SlowAnswer`` on the first read timeout of an idempotent request instead of
        sending the same again (the caller asks for less: ``RequestTrackerDesk.search``).
        """
        method = method.upper()
        url = self.api + (path if path.startswith("/") else "/" + path)
        idempotent = (repeat_unanswered if repeat_unanswered is not None
                      else method in IDEMPOTENT or kind in ("read", "search"))
        self._ensure_web_session()
        last_error = "no attempt made"
        unanswered = False  # an earlier attempt may have been applied without our seeing it
        for attempt in range(self.retry.attempts):
            if attempt:
                with self._lock:
                    self.retries_made += 1
            try:
                timeout = self._timeout_within_deadline(method, path, last_error,
                                                        read_timeout)
                with self._slots:
                    with self._lock:
                        self.requests_made += 1
                    started = time.monotonic()
                    try:
                        resp = self.session.request(method, url, params=params, json=json,
                                                    data=data, headers=headers,
                                                    timeout=timeout,
                                                    allow_redirects=False,
                                                    verify=self.verify)
                    except requests.ReadTimeout as exc:
                        raise _Transient(_describe(exc), sent=True, slow=True) from exc
                    except (requests.Timeout, requests.ConnectionError) as exc:
                        raise _Transient(_describe(exc), sent=not _never_sent(exc)) from exc
                log.debug("%s %s -> %s in %.0f ms", method, path, resp.status_code,
                          (time.monotonic() - started) * 1000)
                if resp.status_code == 429 or resp.status_code >= 500:
                    # 429 means "not processed"; a 5xx may have been half-applied.
                    raise _Transient(f"HTTP {resp.status_code}: {_message(resp)}",
                                     sent=resp.status_code != 429, answered=True,
                                     retry_after=retry_after(resp.headers))
                if resp.status_code >= 300:
                    error = _error_for(resp, kind, ticket_id)
                    error.after_unanswered_attempt = unanswered  # type: ignore[attr-defined]
                    raise error
                return resp
            except _Transient as failure:
                last_error = failure.message
                unanswered = unanswered or failure.sent
                if failure.sent and not idempotent:
                    raise AmbiguousWrite(f"{method} {path}: {failure.message} (may have been "
                                         "applied)", ticket_id=ticket_id,
                                         still_running=not failure.answered) from None
                if failure.slow and on_read_timeout == "raise":
                    raise SlowAnswer(f"{method} {path}: no answer within "
                                     f"{timeout[1]:.0f} s", ticket_id=ticket_id) from None
                if attempt + 1 >= self.retry.attempts:
                    break
                pause = self.retry.delay(attempt, failure.retry_after)
                bound = call_deadline()
                if bound is not None and time.monotonic() + pause >= bound:
                    break  # the retry would start past the caller's deadline
                log.info("%s %s failed (%s); retry %d in %.2fs", method, path, failure.message,
                         attempt + 1, pause)
                self._sleep(pause)
        raise TransientDeskError(
            f"{method} {path}: gave up after {self.retry.attempts} attempts: {last_error}",
            ticket_id=ticket_id)

    def _timeout_within_deadline(self, method: str, path: str, last_error: str,
                                 read_timeout: float | None = None) -> tuple[float, float]:
        """(connect, read) timeouts cut to the caller's deadline (``desk.port.deadline``)."""
        wanted = self.timeout if read_timeout is None else (self.timeout[0], read_timeout)
        bound = call_deadline()
        if bound is None:
            return wanted
        left = bound - time.monotonic()
        if left <= 0.05:
            raise TransientDeskError(
                f"{method} {path}: not sent: the desk lease this call runs under could run "
                f"out before an answer" + (f" (last error: {last_error})"
                                          if last_error != "no attempt made" else ""))
        return (min(wanted[0], left), min(wanted[1], left))

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def json(self, method: str, path: str, **kw: Any) -> Any:
        resp = self.request(method, path, **kw)
        try:
            return resp.json()
        except ValueError as exc:
            raise TransientDeskError(f"{method} {path}: answer is not JSON: "
                                     f"{resp.text[:200]!r}") from exc


def after_unanswered_attempt(error: BaseException) -> bool:
    """True when an earlier try of the failed request may have been applied (an idempotent
    write retried after a dropped answer): a 412 then may be our own first write."""
    return bool(getattr(error, "after_unanswered_attempt", False))


class _Transient(Exception):
    def __init__(self, message: str, *, sent: bool, answered: bool = False,
                 retry_after: float | None = None, slow: bool = False):
        super().__init__(message)
        self.slow = slow  # a read timeout: sent, and no answer in time
        self.message = message
        self.answered = answered
        self.sent = sent
        self.retry_after = retry_after


def _never_sent(exc: Exception) -> bool:
    """True when the connection failed before the request could reach the server."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


def _describe(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 300 else text[:300] + "..."


def _message(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:300].strip() or resp.reason
    if isinstance(body, dict) and "message" in body:
        return str(body["message"])[:500]
    return str(body)[:500]


def _error_for(resp: requests.Response, kind: Kind, ticket_id: str | None) -> DeskError:
    status, text = resp.status_code, _message(resp)
    if status in (401, 403) or 300 <= status < 400:
        # REST2 redirects to the login page instead of 401 when a cookie was sent.
        return DeskAuthError(f"desk refused our credentials or rights (HTTP {status}): {text}",
                             ticket_id=ticket_id)
    if status == 404:
        return TicketNotFound(f"ticket {ticket_id or '?'} not found (HTTP 404): {text}",
                              ticket_id=ticket_id)
    if status == 412:
        return StaleTicket(f"ticket {ticket_id or '?'} changed since it was read (HTTP 412)",
                           ticket_id=ticket_id)
    if status == 400 and kind == "search":
        return BadQuery(f"desk refused the search (HTTP 400): {text}")
    if kind == "write" and status in (400, 409, 422):
        return RejectedChange(f"ticket {ticket_id or '?'}: desk refused the change "
                              f"(HTTP {status}): {text}", ticket_id=ticket_id)
    return DeskError(f"unexpected HTTP {status}: {text}", ticket_id=ticket_id)
