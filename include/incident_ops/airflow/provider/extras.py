"""Reading our connections' extras: the one place a field is validated, named in errors.

Connection extras are read under their bare names (``{"timeout": 30}``), which is how
Airflow 3 stores the form fields declared in ``provider.info``; the older
``extra__<conn_type>__<name>`` keys are accepted too. An empty field means "the default".
Secrets (password, token, header values) never appear in messages or logs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from airflow.sdk import BaseHook, Connection


class ConnectionConfigError(ValueError):
    """A connection field is missing or has a bad value; names the conn id and the field."""

    def __init__(self, conn_id: str, field_name: str, problem: str) -> None:
        super().__init__(f"connection {conn_id!r}: field {field_name!r} {problem}")
        self.conn_id = conn_id
        self.field = field_name


# --------------------------------------------------------------------- reading extras
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def extra_fields(conn: Connection, conn_type: str) -> dict[str, Any]:
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


def as_bool(value: Any, conn_id: str, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ConnectionConfigError(conn_id, name, f"must be true or false, got {value!r}")


def as_int(
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


def as_seconds(value: Any, conn_id: str, name: str) -> float:
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


def as_choice(value: Any, conn_id: str, name: str, choices: tuple[str, ...]) -> str:
    text = str(value).strip()
    for choice in choices:
        if text.lower() == choice.lower():
            return choice
    raise ConnectionConfigError(conn_id, name, f"must be one of {', '.join(choices)}; got {text!r}")


def http_url(conn: Connection, what: str) -> str:
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


def display_url(url: str) -> str:
    """A URL fit for messages: no user info, no query string (either may hold a secret)."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def warn_unknown(hook: BaseHook, conn_id: str, fields: Mapping[str, Any], known: set[str]) -> None:
    unknown = sorted(set(fields) - known)
    if unknown:
        # A typo ("verify_ssl") would otherwise silently fall back to the default.
        hook.log.warning(
            "Connection %r has extra fields this hook ignores: %s (known: %s)",
            conn_id,
            ", ".join(unknown),
            ", ".join(sorted(known)),
        )
