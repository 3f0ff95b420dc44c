"""The Airflow hook of the ``sms_gateway`` connection type: one JSON request per SMS.

Like the desk hook it reads its connection lazily, validates it in one place (``extras``)
and answers ``test_connection()`` with ``(ok, message)``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from incident_ops.airflow.provider.extras import (
    ConnectionConfigError,
    as_choice,
    as_int,
    as_seconds,
    display_url,
    extra_fields,
    http_url,
    warn_unknown,
)
from incident_ops.airflow.provider.info import SMS_DEFAULTS, SMS_GATEWAY_CONN_TYPE, SMS_METHODS
from incident_ops.desk.retry import RetryPolicy, retry_after
from incident_ops.notify.messages import Sms

if TYPE_CHECKING:
    from airflow.sdk import Connection

IDEMPOTENCY_HEADER = "Idempotency-Key"


class SmsDeliveryError(Exception):
    """The gateway did not accept an SMS. ``transient`` says whether a later try may succeed."""

    def __init__(self, message: str, *, status: int | None = None, transient: bool) -> None:
        super().__init__(message)
        self.status = status
        self.transient = transient


class SmsRejected(SmsDeliveryError):
    """The gateway refused the message itself (4xx other than 429): retrying will not help."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message, status=status, transient=False)



_PLACEHOLDER = re.compile(r"\{(to|to_csv|text|key)\}")


@dataclass(frozen=True)
class SmsSettings:
    """Everything the SMS hook needs from an ``sms_gateway`` connection, validated."""

    conn_id: str
    url: str
    method: str = SMS_DEFAULTS["method"]
    body_template: Any = None  # parsed JSON with placeholder strings
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    auth: tuple[str, str] | None = field(default=None, repr=False)
    timeout: float = float(SMS_DEFAULTS["timeout"])
    max_retries: int = SMS_DEFAULTS["max_retries"]


def _placeholders(template: Any) -> set[str]:
    if isinstance(template, str):
        return set(_PLACEHOLDER.findall(template))
    if isinstance(template, Mapping):
        return set().union(*(_placeholders(v) for v in template.values()))
    if isinstance(template, list):
        return set().union(*(_placeholders(v) for v in template))
    return set()


def sms_settings(conn: Connection, hook: BaseHook | None = None) -> SmsSettings:
    """Read and validate an ``sms_gateway`` connection: the one place its extras are read."""
    conn_id = conn.conn_id
    extras = extra_fields(conn, SMS_GATEWAY_CONN_TYPE)
    if hook is not None:
        warn_unknown(hook, conn_id, extras, set(SMS_DEFAULTS))
    values = {**SMS_DEFAULTS, **extras}

    template = values["body_template"]
    if isinstance(template, str):
        try:
            template = json.loads(template)
        except json.JSONDecodeError as exc:
            raise ConnectionConfigError(
                conn_id, "body_template", f"is not valid JSON ({exc.msg} at char {exc.pos})"
            ) from None
    found = _placeholders(template)
    if "text" not in found or not found & {"to", "to_csv"}:
        raise ConnectionConfigError(
            conn_id, "body_template", 'must contain "{text}" and "{to}" (or "{to_csv}")'
        )

    headers: Any = values["headers"] or {}
    if isinstance(headers, str):
        try:
            headers = json.loads(headers)
        except ValueError:
            raise ConnectionConfigError(conn_id, "headers", "is not a JSON object") from None
    if not isinstance(headers, Mapping):
        raise ConnectionConfigError(conn_id, "headers", "must be a JSON object of name: value")

    auth = (conn.login, conn.password or "") if conn.login else None
    return SmsSettings(
        conn_id=conn_id,
        url=http_url(conn, "gateway's URL"),
        method=as_choice(values["method"], conn_id, "method", SMS_METHODS),
        body_template=template,
        headers={str(k): str(v) for k, v in headers.items()},
        auth=auth,
        timeout=as_seconds(values["timeout"], conn_id, "timeout"),
        max_retries=as_int(values["max_retries"], conn_id, "max_retries", minimum=0, maximum=10),
    )


def render_sms_body(template: Any, sms: Sms) -> Any:
    """Fill the template: a string that is exactly ``"{to}"`` becomes the list of numbers.

    Substitution happens on parsed JSON, one pass per string, so quotes or braces in the
    text can neither break the document nor inject a placeholder.
    """
    from incident_ops.text import printable

    values = {"to": ",".join(sms.to), "to_csv": ",".join(sms.to), "text": printable(sms.text),
              "key": sms.key}
    if isinstance(template, str):
        if template == "{to}":
            return list(sms.to)
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
    if isinstance(template, Mapping):
        return {k: render_sms_body(v, sms) for k, v in template.items()}
    if isinstance(template, list):
        return [render_sms_body(v, sms) for v in template]
    return template


@dataclass(frozen=True)
class SmsReceipt:
    key: str
    status: int
    attempts: int
    response: str = ""  # the gateway's answer, truncated


class SmsGatewayHook(BaseHook):
    """An HTTP SMS gateway that takes one JSON request per message.

    Transient failures (connect errors, timeouts, 429, 5xx) are retried ``max_retries``
    times with exponential backoff (``desk.retry.RetryPolicy``, the desk client's, without
    jitter; ``Retry-After`` honoured, capped at ``max_backoff``);
    every try carries the same ``Idempotency-Key`` header, the message's key, so a gateway
    that dedupes sends one SMS even when an answer was lost. Longer outages are the task's
    retries.

    :param sms_conn_id: a connection of type ``sms_gateway``.
    :param backoff: first retry delay in seconds; doubled on each further try.
    :param max_backoff: upper bound of any single delay.
    :param sleep: how to wait between tries (tests pass a recorder).
    """

    conn_name_attr = "sms_conn_id"
    default_conn_name = "sms_default"
    conn_type = SMS_GATEWAY_CONN_TYPE
    hook_name = "SMS gateway (HTTP)"

    def __init__(
        self,
        sms_conn_id: str = default_conn_name,
        *,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__()
        self.sms_conn_id = sms_conn_id
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._settings: SmsSettings | None = None

    @property
    def settings(self) -> SmsSettings:
        if self._settings is None:
            self._settings = sms_settings(self.get_connection(self.sms_conn_id), self)
        return self._settings

    def get_conn(self) -> SmsSettings:
        return self.settings

    def retry_policy(self, settings: SmsSettings) -> RetryPolicy:
        return RetryPolicy(attempts=settings.max_retries + 1, backoff=self.backoff,
                           backoff_cap=self.max_backoff, retry_after_cap=self.max_backoff,
                           jitter=False)

    def send(self, sms: Sms) -> SmsReceipt:
        """Deliver one SMS or raise ``SmsDeliveryError`` (``SmsRejected`` if it was refused)."""
        import requests

        if not sms.to:
            raise ValueError(f"SMS {sms.key!r} has no recipients")
        s = self.settings
        where = display_url(s.url)
        payload = json.dumps(render_sms_body(s.body_template, sms), ensure_ascii=False)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
            **s.headers,
            IDEMPOTENCY_HEADER: sms.key,
        }
        policy = self.retry_policy(s)
        attempts = policy.attempts
        problem = ""
        with requests.Session() as session:
            for attempt in range(1, attempts + 1):
                try:
                    response = session.request(
                        s.method,
                        s.url,
                        data=payload.encode("utf-8"),
                        headers=headers,
                        auth=s.auth,
                        timeout=s.timeout,
                        allow_redirects=False,
                    )
                except (requests.ConnectionError, requests.Timeout) as exc:
                    # A read timeout may hide a delivered message: the idempotency key
                    # lets the gateway drop the repeat.
                    problem = type(exc).__name__
                    delay = policy.delay(attempt - 1)
                else:
                    status = response.status_code
                    if 200 <= status < 300:
                        self.log.info(
                            "SMS %s accepted by %s (HTTP %s, try %d)",
                            sms.key,
                            where,
                            status,
                            attempt,
                        )
                        return SmsReceipt(sms.key, status, attempt, response.text[:500])
                    if status != 429 and status < 500:
                        raise SmsRejected(
                            f"SMS gateway {where} (connection {s.conn_id!r}) refused message "
                            f"{sms.key!r}: HTTP {status} {response.text[:200]!r}",
                            status=status,
                        )
                    problem = f"HTTP {status}"
                    delay = policy.delay(attempt - 1, retry_after(response.headers))
                if attempt < attempts:
                    self.log.warning(
                        "SMS %s: %s from %s; retry %d of %d in %.2f s",
                        sms.key,
                        problem,
                        where,
                        attempt,
                        s.max_retries,
                        delay,
                    )
                    self._sleep(delay)
        raise SmsDeliveryError(
            f"SMS gateway {where} (connection {s.conn_id!r}) did not accept message "
            f"{sms.key!r} after {attempts} tries: last {problem}",
            transient=True,
        )

    def test_connection(self) -> tuple[bool, str]:
        """A HEAD request to the gateway URL: checks reachability and credentials, sends nothing."""
        import requests

        try:
            s = self.settings
            response = requests.head(
                s.url, headers=s.headers, auth=s.auth, timeout=s.timeout, allow_redirects=False
            )
        except ConnectionConfigError as exc:
            return False, str(exc)
        except requests.RequestException as exc:
            return (
                False,
                f"Cannot reach the SMS gateway of {self.sms_conn_id!r}: {type(exc).__name__}",
            )
        except Exception as exc:  # the UI shows this string; a traceback helps nobody there
            return False, f"Cannot use connection {self.sms_conn_id!r}: {type(exc).__name__}: {exc}"
        where = display_url(s.url)
        if response.status_code in (401, 403):
            return (
                False,
                f"The SMS gateway {where} refused the credentials (HTTP {response.status_code})",
            )
        if response.status_code >= 500:
            return False, f"The SMS gateway {where} answered HTTP {response.status_code}"
        return (
            True,
            f"SMS gateway {where} reachable (HTTP {response.status_code}); nothing was sent",
        )
