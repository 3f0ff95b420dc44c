"""The composition root: the one place that binds the desk, the senders, the state kept in
Airflow and the configuration to the code of every pipeline.

A task body asks for ``services(context)`` and gets everything through it: ``desk`` (the
``servicedesk_default`` connection's adapter, built on first use), ``notifier`` (SMTP and SMS
connections), ``config`` (the YAML policy, each file read once per task), ``applier(scope)``
(the apply engine holding the scope's desk lease and outbox), the run's identity and time.
Nothing else in the Airflow layer builds a hook or reads a policy file, so what a pipeline
talks to is visible here, and a test or a second deployment swaps one thing in one place.
The plugin's pages (``web``) ask for ``web_services()`` instead: one desk per API server
process, and the config.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from incident_ops.airflow.names import DESK_CONN, FAILURE_XCOM, airflow_url
from incident_ops.airflow.runtime import AirflowNotifier, RunInfo, run_info
from incident_ops.desk.port import ServiceDesk

if TYPE_CHECKING:
    from incident_ops.airflow.provider.desk_hook import ServiceDeskHook
    from incident_ops.engine import Applier
    from incident_ops.policy.closure import ClosurePolicy
    from incident_ops.policy.contingency import PlanBook
    from incident_ops.policy.escalation import SlaPolicy
    from incident_ops.reference import Contacts, Vocabulary
    from incident_ops.reports.settings import ReportSettings


def lease_ttl() -> float:
    """How long a run holds its scope's lease unless renewed: ``$INCIDENT_OPS_LEASE_SECONDS``."""
    return max(3.0, float(os.environ.get("INCIDENT_OPS_LEASE_SECONDS", "120")))


def priority_ranks(vocabulary: Vocabulary) -> dict[str, int]:
    """Priority code -> rank, what the desk adapter sorts and searches by."""
    return {code: vocabulary.rank_for_priority(code) for code in vocabulary.codes("priorities")}


class Config:
    """The policy files of ``include/config`` (or ``$INCIDENT_OPS_CONFIG_DIR``), each read once."""

    @cached_property
    def vocabulary(self) -> Vocabulary:
        from incident_ops.config import load_vocabulary

        return load_vocabulary()

    @cached_property
    def contacts(self) -> Contacts:
        from incident_ops.config import load_contacts

        return load_contacts()

    @cached_property
    def closure(self) -> ClosurePolicy:
        from incident_ops.config import load_yaml
        from incident_ops.policy.closure import ClosurePolicy

        return ClosurePolicy.from_dict(load_yaml("closure.yaml"))

    @cached_property
    def sla(self) -> SlaPolicy:
        from incident_ops.config import load_yaml, timezone
        from incident_ops.policy.escalation import SlaPolicy

        return SlaPolicy.from_dict(load_yaml("sla.yaml"), tz=timezone())

    @cached_property
    def plans(self) -> PlanBook:
        """The contingency plans (``plans/*.yaml``), read against the contacts."""
        from incident_ops.config import load_plans

        book: PlanBook = load_plans(self.contacts)
        return book

    @cached_property
    def reports(self) -> ReportSettings:
        from incident_ops.reports.settings import load_report_settings

        return load_report_settings()

    def yaml(self, name: str) -> dict[str, Any]:
        from incident_ops.config import load_yaml

        return load_yaml(name)


@dataclass
class Services:
    context: Any
    conn_id: str = DESK_CONN
    config: Config = field(default_factory=Config)
    notifier: AirflowNotifier = field(default_factory=AirflowNotifier)
    _hook: ServiceDeskHook | None = None

    @cached_property
    def info(self) -> RunInfo:
        return run_info(self.context)

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.context.get("params") or {})

    @property
    def dry_run(self) -> bool:
        return bool(self.params.get("dry_run"))

    @property
    def desk(self) -> ServiceDesk:
        if self._hook is None:
            from incident_ops.airflow.provider.desk_hook import ServiceDeskHook

            self._hook = ServiceDeskHook(self.conn_id,
                                         priority_ranks=priority_ranks(self.config.vocabulary))
        desk: ServiceDesk = self._hook.get_desk()
        return desk

    def applier(self, scope: str, *, bulk_size: int = 100) -> Applier:
        """The apply engine for ``scope``: its desk lease, its outbox, this run's id."""
        from incident_ops.airflow.object_store import artefact_store
        from incident_ops.airflow.state import VariableOutbox
        from incident_ops.airflow.web.answer_links import link_renderer
        from incident_ops.engine import Applier, Lease, holder_id

        ti = self.context.get("ti")
        holder = holder_id(self.info.run_id, getattr(ti, "task_id", ""),
                           getattr(ti, "try_number", ""))
        return Applier(self.desk, self.notifier, self.info.run_id,
                       outbox=VariableOutbox(scope),
                       lease=Lease(self.desk, scope, holder, ttl=lease_ttl()),
                       bulk_size=bulk_size, render_context=link_renderer(airflow_url()),
                       artefacts=artefact_store())

    def close(self) -> None:
        hook, self._hook = self._hook, None
        if hook is not None:
            hook.close()


class WebServices:
    """What the plugin's pages use, one per API server process: the desk (built at the first
    request, rebuilt after it refused our credentials) and the config (read afresh per
    request: a page picks up an edited contacts.yaml without a restart)."""

    def __init__(self, conn_id: str = DESK_CONN) -> None:
        self.conn_id = conn_id
        self._hook: ServiceDeskHook | None = None
        self._lock = threading.Lock()

    @property
    def config(self) -> Config:
        return Config()

    def desk(self) -> ServiceDesk:
        with self._lock:
            if self._hook is None:
                from incident_ops.airflow.provider.desk_hook import ServiceDeskHook

                self._hook = ServiceDeskHook(
                    self.conn_id, priority_ranks=priority_ranks(self.config.vocabulary))
            desk: ServiceDesk = self._hook.get_desk()
            return desk

    def reset(self) -> None:
        """Drop the desk: the next request builds it again (new credentials, a new session)."""
        with self._lock:
            hook, self._hook = self._hook, None
        if hook is not None:
            hook.close()

    def desk_url(self) -> str | None:
        """The desk's base URL (for links to its tickets), read from the connection now."""
        from incident_ops.airflow.provider.desk_hook import ServiceDeskHook

        return str(ServiceDeskHook(self.conn_id).settings.base_url).rstrip("/")


_WEB: list[WebServices] = []
_WEB_LOCK = threading.Lock()


def web_services() -> WebServices:
    """The API server process's ``WebServices`` (made at the first call)."""
    with _WEB_LOCK:
        if not _WEB:
            _WEB.append(WebServices())
        return _WEB[0]


_CHECKED: set[str] = set()


def check_config_once() -> None:
    """Every task starts by checking the whole config folder (``check-config``), once per
    process and folder: a typo anywhere fails the run at its first task, naming file, key
    and line, instead of switching a rule off or failing half-way through an apply."""
    from incident_ops.config import config_dir
    from incident_ops.config_check import check_config

    folder = str(config_dir())
    if folder in _CHECKED:
        return
    problems = check_config()
    if problems:
        from airflow.sdk.exceptions import AirflowFailException

        # Not retried: a typo does not fix itself; the run fails now and on-call hears.
        raise AirflowFailException(
            f"the configuration in {folder} has {len(problems)} problem(s) "
            "(`python -m incident_ops check-config` lists the same):\n" + "\n".join(problems))
    _CHECKED.add(folder)


def _record_failure(context: Any, exc: BaseException) -> None:
    """Keep the reason a task failed where the DAG's failure callback can read it: the
    alert then says *why* (a config key, a desk refusal), not only *which task*."""
    ti = context.get("ti") if hasattr(context, "get") else None
    if ti is None:
        return
    try:
        ti.xcom_push(key=FAILURE_XCOM, value=f"{type(exc).__name__}: {exc}"[:2000])
    except Exception:  # the failure itself matters more than its description
        pass


@contextmanager
def services(context: Any, *, conn_id: str = DESK_CONN) -> Iterator[Services]:
    bound = Services(context, conn_id=conn_id)
    try:
        check_config_once()
        yield bound
    except Exception as exc:
        _record_failure(context, exc)
        raise
    finally:
        bound.close()
