"""Airflow hooks for our two connection types: the service desk and the HTTP SMS gateway.

Both hooks follow the house rules for talking to the outside: they say who they are in class
attributes (which ``provider.py`` registers with Airflow), read their connection lazily on
first use (never in ``__init__``, so constructing one at DAG-parse time costs nothing), turn
the connection into a validated settings object in one place, and answer
``test_connection()`` with ``(ok, message)`` instead of a traceback.

Connection extras are read under their bare names (``{"timeout": 30}``), which is how
Airflow 3 stores the form fields declared in ``provider.py``; the older
``extra__<conn_type>__<name>`` keys are accepted too. An empty field means "the default".
Secrets (password, token, header values) never appear in messages or logs.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from airflow.sdk import BaseHook

from incident_ops.airflow.provider import (
    SERVICEDESK_BACKENDS,
    SERVICEDESK_CONN_TYPE,
    SERVICEDESK_DEFAULTS,
    SMS_DEFAULTS,
    SMS_GATEWAY_CONN_TYPE,
    SMS_METHODS,
)
from incident_ops.desk.port import DeskAuthError, DeskError, ServiceDesk
from incident_ops.notify.messages import Sms

if TYPE_CHECKING:
    import requests
    from airflow.sdk import Connection

IDEMPOTENCY_HEADER = "Idempotency-Key"


class ConnectionConfigError(ValueError):
    """A connection field is missing or has a bad value; names the conn id and the field."""

    def __init__(self, conn_id: str, field_name: str, problem: str) -> None:
        super().__init__(f"connection {conn_id!r}: field {field_name!r} {problem}")
        self.conn_id = conn_id
        self.field = field_name


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


# --------------------------------------------------------------------- reading extras
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _extra_fields(conn: Connection, conn_type: str) -> dict[str, Any]:
    """The connection's extras by bare field name, empty values dropped."""
    if conn.extra:
        try:
            json.loads(conn.extra)
        except ValueError:
            # extra_dejson would log and return {}: silently running on defaults is worse.
            raise ConnectionConfigError(conn.conn_id, "extra", "is not valid JSON") from None
    raw = conn.extra_dejson  # also registers secret-looking values with the log masker
    prefix = f"extra__{conn_type}__"
    fields: dict[str, Any] = {}
    # Bare names win over the legacy prefixed ones, so apply the prefixed first.
    for key, value in sorted(raw.items(), key=lambda kv: not kv[0].startswith(prefix)):
        if value is None or value == "":
            continue
        fields[key.removeprefix(prefix)] = value
    return fields


def _as_bool(value: Any, conn_id: str, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ConnectionConfigError(conn_id, name, f"must be true or false, got {value!r}")


def _as_int(
    value: Any, conn_id: str, name: str, *, minimum: int, maximum: int | None = None
) -> int:
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        number = int(value)
    except (TypeError, ValueError):
        raise ConnectionConfigError(
            conn_id, name, f"must be a whole number, got {value!r}"
        ) from None
    if number < minimum or (maximum is not None and number > maximum):
        bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ConnectionConfigError(conn_id, name, f"must be {bounds}, got {number}")
    return number


def _as_seconds(value: Any, conn_id: str, name: str) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        seconds = float(value)
    except (TypeError, ValueError):
        raise ConnectionConfigError(
            conn_id, name, f"must be a number of seconds, got {value!r}"
        ) from None
    if not 0 < seconds <= 3600:
        raise ConnectionConfigError(conn_id, name, f"must be between 0 and 3600 s, got {seconds}")
    return seconds


def _as_choice(value: Any, conn_id: str, name: str, choices: tuple[str, ...]) -> str:
    text = str(value).strip()
    for choice in choices:
        if text.lower() == choice.lower():
            return choice
    raise ConnectionConfigError(conn_id, name, f"must be one of {', '.join(choices)}; got {text!r}")


def _http_url(conn: Connection, what: str) -> str:
    """``host`` as an http(s) URL; ``port`` is added when the host does not carry one."""
    host = (conn.host or "").strip()
    if not host:
        raise ConnectionConfigError(conn.conn_id, "host", f"must hold the {what}")
    if "://" not in host:
        # A bare host name (URI-form connections put the URL's host here): schema, else https.
        scheme = conn.schema if conn.schema in ("http", "https") else "https"
        host = f"{scheme}://{host}"
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConnectionConfigError(
            conn.conn_id, "host", f"must be an http(s) URL like http://127.0.0.1:8480, got {host!r}"
        )
    netloc = parts.netloc
    if conn.port and parts.port is None:
        netloc = f"{netloc}:{conn.port}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), parts.query, ""))


def _display_url(url: str) -> str:
    """A URL fit for messages: no user info, no query string (either may hold a secret)."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _warn_unknown(hook: BaseHook, conn_id: str, fields: Mapping[str, Any], known: set[str]) -> None:
    unknown = sorted(set(fields) - known)
    if unknown:
        # A typo ("verify_ssl") would otherwise silently fall back to the default.
        hook.log.warning(
            "Connection %r has extra fields this hook ignores: %s (known: %s)",
            conn_id,
            ", ".join(unknown),
            ", ".join(sorted(known)),
        )


# --------------------------------------------------------------------------- the desk
@dataclass(frozen=True)
class DeskSettings:
    """Everything a desk adapter needs from a ``servicedesk`` connection, validated."""

    conn_id: str
    base_url: str
    backend: str = SERVICEDESK_DEFAULTS["backend"]
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    verify_tls: bool = SERVICEDESK_DEFAULTS["verify_tls"]
    timeout: float = float(SERVICEDESK_DEFAULTS["timeout"])
    page_size: int = SERVICEDESK_DEFAULTS["page_size"]
    max_concurrency: int = SERVICEDESK_DEFAULTS["max_concurrency"]

    @property
    def auth_description(self) -> str:
        if self.token:
            return "an API token"
        return f"user {self.login!r}" if self.login else "no credentials"


def desk_settings(conn: Connection, hook: BaseHook | None = None) -> DeskSettings:
    """Read and validate a ``servicedesk`` connection: the one place its extras are read."""
    conn_id = conn.conn_id
    extras = _extra_fields(conn, SERVICEDESK_CONN_TYPE)
    if hook is not None:
        _warn_unknown(hook, conn_id, extras, set(SERVICEDESK_DEFAULTS) | {"token"})
    values = {**SERVICEDESK_DEFAULTS, **extras}
    token = str(extras["token"]) if "token" in extras else None
    login = conn.login or None
    if not token and not login:
        raise ConnectionConfigError(
            conn_id, "login", "is empty and no token is set: the desk needs one or the other"
        )
    return DeskSettings(
        conn_id=conn_id,
        base_url=_http_url(conn, "desk's base URL, e.g. http://127.0.0.1:8480"),
        backend=_as_choice(values["backend"], conn_id, "backend", SERVICEDESK_BACKENDS),
        login=login,
        password=conn.password or None,
        token=token,
        verify_tls=_as_bool(values["verify_tls"], conn_id, "verify_tls"),
        timeout=_as_seconds(values["timeout"], conn_id, "timeout"),
        page_size=_as_int(values["page_size"], conn_id, "page_size", minimum=1, maximum=1000),
        max_concurrency=_as_int(
            values["max_concurrency"], conn_id, "max_concurrency", minimum=1, maximum=32
        ),
    )


def build_desk(settings: DeskSettings) -> ServiceDesk:
    """The adapter for ``settings.backend``; the only place that knows the adapters."""
    if settings.backend == "rt5":
        # Imported here: the adapter pulls in requests, which DAG files must not pay for.
        from incident_ops.desk.rt.adapter import RequestTrackerDesk
        from incident_ops.desk.rt.client import RTClient

        client = RTClient(
            settings.base_url,
            user=settings.login,
            password=settings.password,
            token=settings.token,
            verify=settings.verify_tls,
            # A refused or unreachable desk should fail fast; a slow search may take longer.
            timeout=(min(settings.timeout, 10.0), settings.timeout),
            max_concurrency=settings.max_concurrency,
        )
        return RequestTrackerDesk(client, page_size=settings.page_size)
    raise ConnectionConfigError(settings.conn_id, "backend", f"{settings.backend!r} has no adapter")


def _close_desk(desk: object) -> None:
    """Close the adapter's HTTP session: the adapter's own ``close`` or its client's."""
    for owner in (desk, getattr(desk, "client", None)):
        closer = getattr(owner, "close", None)
        if callable(closer):
            closer()
            return


class ServiceDeskHook(BaseHook):
    """The organisation's service desk, behind the ``ServiceDesk`` port.

    :param servicedesk_conn_id: a connection of type ``servicedesk``.
    """

    conn_name_attr = "servicedesk_conn_id"
    default_conn_name = "servicedesk_default"
    conn_type = SERVICEDESK_CONN_TYPE
    hook_name = "Service Desk (ITIL)"

    def __init__(self, servicedesk_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.servicedesk_conn_id = servicedesk_conn_id
        self._settings: DeskSettings | None = None
        self._desk: ServiceDesk | None = None

    @property
    def settings(self) -> DeskSettings:
        if self._settings is None:
            self._settings = desk_settings(self.get_connection(self.servicedesk_conn_id), self)
        return self._settings

    def get_desk(self) -> ServiceDesk:
        """The desk adapter for this connection (built once per hook)."""
        if self._desk is None:
            self._desk = build_desk(self.settings)
        return self._desk

    def get_conn(self) -> ServiceDesk:
        return self.get_desk()

    def close(self) -> None:
        """Release the adapter's HTTP sessions, if it holds any."""
        desk, self._desk = self._desk, None
        if desk is not None:
            _close_desk(desk)

    def __enter__(self) -> ServiceDeskHook:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def test_connection(self) -> tuple[bool, str]:
        """One cheap authenticated call; the message is what the Airflow UI shows."""
        conn_id = self.servicedesk_conn_id
        try:
            settings = self.settings
            where = f"{_display_url(settings.base_url)} as {settings.auth_description}"
            ok, message = self.get_desk().ping()
        except ConnectionConfigError as exc:
            return False, str(exc)
        except DeskAuthError as exc:
            return False, f"The desk refused the credentials of connection {conn_id!r}: {exc}"
        except DeskError as exc:
            return False, f"Cannot use the desk of connection {conn_id!r}: {exc}"
        except Exception as exc:  # the UI shows this string; a traceback helps nobody there
            return (
                False,
                f"Cannot use the desk of connection {conn_id!r}: {type(exc).__name__}: {exc}",
            )
        finally:
            self.close()
        if not ok:
            return False, f"Connection {conn_id!r} cannot use the desk at {where}: {message}"
        return True, f"{message} ({where})"


# ------------------------------------------------------------------------ SMS gateway
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
    extras = _extra_fields(conn, SMS_GATEWAY_CONN_TYPE)
    if hook is not None:
        _warn_unknown(hook, conn_id, extras, set(SMS_DEFAULTS))
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
        url=_http_url(conn, "gateway's URL"),
        method=_as_choice(values["method"], conn_id, "method", SMS_METHODS),
        body_template=template,
        headers={str(k): str(v) for k, v in headers.items()},
        auth=auth,
        timeout=_as_seconds(values["timeout"], conn_id, "timeout"),
        max_retries=_as_int(values["max_retries"], conn_id, "max_retries", minimum=0, maximum=10),
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


def _retry_after(response: requests.Response) -> float:
    """Seconds asked for by ``Retry-After`` (delta-seconds or an HTTP date); 0 if absent."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return 0.0
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return 0.0


class SmsGatewayHook(BaseHook):
    """An HTTP SMS gateway that takes one JSON request per message.

    Transient failures (connect errors, timeouts, 429, 5xx) are retried ``max_retries``
    times with exponential backoff (``Retry-After`` honoured, capped at ``max_backoff``);
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

    def send(self, sms: Sms) -> SmsReceipt:
        """Deliver one SMS or raise ``SmsDeliveryError`` (``SmsRejected`` if it was refused)."""
        import requests

        if not sms.to:
            raise ValueError(f"SMS {sms.key!r} has no recipients")
        s = self.settings
        where = _display_url(s.url)
        payload = json.dumps(render_sms_body(s.body_template, sms), ensure_ascii=False)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
            **s.headers,
            IDEMPOTENCY_HEADER: sms.key,
        }
        attempts = s.max_retries + 1
        problem = ""
        with requests.Session() as session:
            for attempt in range(1, attempts + 1):
                delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
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
                    delay = min(self.max_backoff, max(delay, _retry_after(response)))
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
        where = _display_url(s.url)
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
