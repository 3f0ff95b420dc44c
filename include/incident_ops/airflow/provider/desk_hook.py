"""The Airflow hook of the ``servicedesk`` connection type: the desk behind the port.

The hook follows the house rules for talking to the outside: it says who it is in class
attributes (which ``provider.info`` registers with Airflow), reads its connection lazily on
first use (never in ``__init__``, so constructing one at DAG-parse time costs nothing), turns
the connection into a validated settings object in one place (``extras``), and answers
``test_connection()`` with ``(ok, message)`` instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from airflow.sdk import BaseHook

from incident_ops.airflow.provider.extras import (
    ConnectionConfigError,
    as_bool,
    as_choice,
    as_int,
    as_seconds,
    display_url,
    extra_fields,
    http_url,
    warn_unknown,
)
from incident_ops.airflow.provider.info import (
    SERVICEDESK_BACKENDS,
    SERVICEDESK_CONN_TYPE,
    SERVICEDESK_DEFAULTS,
)
from incident_ops.desk.port import DeskAuthError, DeskError, ServiceDesk

if TYPE_CHECKING:
    from airflow.sdk import Connection

__all__ = ["ConnectionConfigError", "DeskSettings", "ServiceDeskHook", "build_desk",
           "desk_settings"]


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
    extras = extra_fields(conn, SERVICEDESK_CONN_TYPE)
    if hook is not None:
        warn_unknown(hook, conn_id, extras, set(SERVICEDESK_DEFAULTS) | {"token"})
    values = {**SERVICEDESK_DEFAULTS, **extras}
    token = str(extras["token"]) if "token" in extras else None
    login = conn.login or None
    if not token and not login:
        raise ConnectionConfigError(
            conn_id, "login", "is empty and no token is set: the desk needs one or the other"
        )
    return DeskSettings(
        conn_id=conn_id,
        base_url=http_url(conn, "desk's base URL, e.g. http://127.0.0.1:8480"),
        backend=as_choice(values["backend"], conn_id, "backend", SERVICEDESK_BACKENDS),
        login=login,
        password=conn.password or None,
        token=token,
        verify_tls=as_bool(values["verify_tls"], conn_id, "verify_tls"),
        timeout=as_seconds(values["timeout"], conn_id, "timeout"),
        page_size=as_int(values["page_size"], conn_id, "page_size", minimum=1, maximum=1000),
        max_concurrency=as_int(
            values["max_concurrency"], conn_id, "max_concurrency", minimum=1, maximum=32
        ),
    )


def build_desk(settings: DeskSettings, priority_ranks: Mapping[str, int] | None = None
               ) -> ServiceDesk:
    """The adapter for ``settings.backend``; the only place that knows the adapters.
    ``priority_ranks``: the vocabulary's priority code -> rank (the composition root passes
    them; without them the adapter reads the vocabulary itself)."""
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
        return RequestTrackerDesk(client, page_size=settings.page_size,
                                  priority_ranks=priority_ranks)
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

    def __init__(self, servicedesk_conn_id: str = default_conn_name, *,
                 priority_ranks: Mapping[str, int] | None = None) -> None:
        super().__init__()
        self.servicedesk_conn_id = servicedesk_conn_id
        self.priority_ranks = priority_ranks
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
            self._desk = build_desk(self.settings, self.priority_ranks)
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
            where = f"{display_url(settings.base_url)} as {settings.auth_description}"
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
