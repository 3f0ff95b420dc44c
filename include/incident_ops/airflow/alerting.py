"""On-call alerting for every DAG: failed runs, missed deadlines, recoveries, by mail.

``dag_defaults.alerting(dag_id)`` puts these on every DAG:

- ``OnCallNotifier("failed")`` as the DAG's ``on_failure_callback`` and
  ``OnCallNotifier("succeeded")`` as its ``on_success_callback``. Airflow runs DAG callbacks
  once per run, in the DAG processor; a failed run mails on-call (``notify.oncall``: the run
  and task links, what apply left undone), a success after failures mails the recovery;
- for DAGs with a deadline, an Airflow Deadline Alert whose callback ``deadline_missed``
  runs in the triggerer when a run has not succeeded in time.

Who is told: ``$INCIDENT_OPS_ALERT_TO`` (comma-separated addresses), through the SMTP
connection ``$INCIDENT_OPS_ALERT_SMTP_CONN_ID`` (default ``smtp_default``). A silence is the
Variable ``incident_ops.oncall.silence`` (``{"until": "2026-06-01T18:00+08:00", "dags": [...]}``):
alerts are then logged, not mailed. The per-DAG streak state is the Variable
``incident_ops.oncall.<dag_id>`` (written by the DAG processor's callbacks only).

Every alert has a key per (DAG, run, kind) and so a deterministic Message-ID; a key already
mailed is not mailed again (a run cleared and failed again, a callback replayed).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from airflow.sdk.bases.notifier import BaseNotifier

from incident_ops.airflow.names import APPLIED_XCOM, FAILURE_XCOM, PLAN_PAGE_XCOM, airflow_url
from incident_ops.notify.oncall import (
    FAILED,
    RECOVERED,
    OnCallState,
    RunFacts,
    Silence,
    TaskLink,
    alert_key,
    deadline_alert,
    deadline_reason,
    failure_alert,
    record_failure,
    record_success,
    recovery_alert,
    summary_from_xcom,
)

log = logging.getLogger(__name__)

STATE_PREFIX = "incident_ops.oncall."
SILENCE_VARIABLE = "incident_ops.oncall.silence"
SILENCE_HINT = ("Silence: set the Airflow Variable incident_ops.oncall.silence to "
                '{"until": "<ISO time with zone>"} (docs/deploy.md, Monitoring).')


def recipients() -> tuple[str, ...]:
    raw = os.environ.get("INCIDENT_OPS_ALERT_TO") or ""
    return tuple(a.strip() for a in raw.replace(";", ",").split(",") if a.strip())


def smtp_conn_id() -> str:
    return os.environ.get("INCIDENT_OPS_ALERT_SMTP_CONN_ID", "smtp_default")


def run_url(dag_id: str, run_id: str) -> str:
    return f"{airflow_url()}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}"


# ------------------------------------------------------------------ metadata access
class _Supervised:
    """Variables, XComs and task states through the supervisor (DAG processor, triggerer)."""

    def get_var(self, name: str) -> str | None:
        from airflow.sdk import Variable

        value = Variable.get(name, default=None)
        return None if value is None else str(value)

    def set_var(self, name: str, value: str, description: str) -> None:
        from airflow.sdk import Variable

        Variable.set(name, value, description=description)

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        states = RuntimeTaskInstance.get_task_states(dag_id=dag_id, run_ids=[run_id])
        return {str(k): str(v) for k, v in (states.get(run_id) or {}).items()}

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str) -> Any:
        from airflow.sdk.execution_time.xcom import XCom

        return XCom.get_one(key=key, dag_id=dag_id, task_id=task_id, run_id=run_id)


class _InProcess:
    """The same from the metadata DB, for callbacks ``dag.test()`` runs in its own process
    (there is no supervisor to ask there, and the DB is local)."""

    def get_var(self, name: str) -> str | None:
        from airflow.models.variable import Variable

        value = Variable.get(name, default_var=None)
        return None if value is None else str(value)

    def set_var(self, name: str, value: str, description: str) -> None:
        from airflow.models.variable import Variable

        Variable.set(name, value, description=description)

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session

        with create_session() as session:
            rows = session.query(TaskInstance.task_id, TaskInstance.state).filter(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id).all()
            return {str(t): str(s) for t, s in rows}

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str) -> Any:
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            row = session.query(XComModel.value).filter(
                XComModel.dag_id == dag_id, XComModel.run_id == run_id,
                XComModel.task_id == task_id, XComModel.key == key).first()
        if row is None:
            return None
        value = row[0]
        if isinstance(value, (str, bytes)):
            try:  # stored as JSON text by some paths, as JSON by others
                return json.loads(value)
            except ValueError:
                return value
        return value


def _metadata() -> _Supervised | _InProcess:
    from airflow.sdk.execution_time import task_runner

    return _Supervised() if hasattr(task_runner, "SUPERVISOR_COMMS") else _InProcess()


def load_state(md: Any, dag_id: str) -> OnCallState:
    raw = md.get_var(STATE_PREFIX + dag_id)
    try:
        return OnCallState.from_dict(json.loads(raw) if raw else None)
    except (ValueError, KeyError, TypeError) as exc:
        log.error("on-call state %s%s unreadable (%s); starting afresh", STATE_PREFIX, dag_id,
                  exc)
        return OnCallState()


def save_state(md: Any, dag_id: str, state: OnCallState) -> None:
    md.set_var(STATE_PREFIX + dag_id, json.dumps(state.to_dict(), sort_keys=True),
               f"{dag_id}: on-call alerting (failing streak, alerts sent); written by the DAG "
               "callbacks, safe to delete")


def active_silence(md: Any) -> Silence | None:
    raw = md.get_var(SILENCE_VARIABLE)
    if not raw:
        return None
    try:
        return Silence.parse(json.loads(raw))
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        log.error("Variable %s ignored, alerts are mailed: %s", SILENCE_VARIABLE, exc)
        return None


def deliver(email: Any, dag_id: str, md: Any, now: datetime) -> str | None:
    """Mail an alert to on-call; its Message-ID, or None when it was not mailed (no
    recipients configured, or silenced: both logged)."""
    from incident_ops.airflow.provider.senders import send_email

    to = recipients()
    if not to:
        log.error("on-call alert NOT mailed: INCIDENT_OPS_ALERT_TO is empty. %s", email.subject)
        return None
    silence = active_silence(md)
    if silence is not None and silence.covers(dag_id, now):
        log.warning("on-call alert silenced until %s (%s): %s", silence.until.isoformat(),
                    silence.reason or "no reason given", email.subject)
        return None
    receipt = send_email(replace(email, to=to), conn_id=smtp_conn_id())
    log.info("on-call alert mailed to %s as %s: %s", ", ".join(to), receipt.message_id,
             email.subject)
    return receipt.message_id


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _failed_links(md: Any, dag_id: str, run_id: str) -> tuple[TaskLink, ...]:
    try:
        states = md.task_states(dag_id, run_id)
    except Exception:  # the alert matters more than its detail
        log.exception("task states of %s %s unavailable", dag_id, run_id)
        return ()
    base = run_url(dag_id, run_id)
    links = []
    for task_id in sorted(t for t, s in states.items() if s == "failed"):
        try:
            error = md.xcom(dag_id, run_id, task_id, FAILURE_XCOM)
        except Exception:
            error = None
        links.append(TaskLink(task_id, f"{base}/tasks/{quote(task_id, safe='')}",
                              str(error) if error else ""))
    return tuple(links)


def run_facts(md: Any, dag_id: str, run_id: str, *, state: str = "", reason: str = "",
              queued_at: datetime | None = None) -> RunFacts:
    """What an alert says about a run: links, failed tasks and, for a plan → apply →
    report pipeline, the summary its tasks recorded."""
    summary: tuple[str, ...] = ()
    plan_page = None
    try:
        planned = md.xcom(dag_id, run_id, "plan", "return_value")
        if isinstance(planned, dict) and "plan" in planned:
            applied = md.xcom(dag_id, run_id, "apply", APPLIED_XCOM)
            summary = summary_from_xcom(planned, applied if isinstance(applied, dict) else None)
            page = md.xcom(dag_id, run_id, "report", PLAN_PAGE_XCOM)
            plan_page = str(page) if page else None
    except Exception:
        log.exception("summary of %s %s unavailable", dag_id, run_id)
    return RunFacts(dag_id=dag_id, run_id=run_id, run_url=run_url(dag_id, run_id),
                    state=state, reason=reason,
                    failed_tasks=_failed_links(md, dag_id, run_id), summary=summary,
                    plan_page=plan_page, queued_at=queued_at)


# ----------------------------------------------------------------- DAG callbacks
def _run_of(context: Any) -> tuple[str, str, Any]:
    dag_run = context.get("dag_run")
    dag = context.get("dag")
    dag_id = getattr(dag_run, "dag_id", None) or getattr(dag, "dag_id", "")
    run_id = getattr(dag_run, "run_id", None) or context.get("run_id") or ""
    return str(dag_id), str(run_id), dag_run


def on_run_failed(context: Any, md: Any | None = None) -> None:
    md = md or _metadata()
    dag_id, run_id, dag_run = _run_of(context)
    now = datetime.now(UTC)
    facts = run_facts(md, dag_id, run_id, state="failed", reason=str(context.get("reason") or ""),
                      queued_at=_aware(getattr(dag_run, "queued_at", None)))
    started = _aware(getattr(dag_run, "start_date", None)) or now
    state = record_failure(load_state(md, dag_id), run_id, started,
                           [t.task_id for t in facts.failed_tasks])
    key = alert_key(dag_id, run_id, FAILED)
    if state.was_sent(key):
        log.info("on-call already told about %s %s: not mailed again", dag_id, run_id)
        save_state(md, dag_id, state)
        return
    assert state.streak is not None  # record_failure opened or extended it
    email = failure_alert(facts, state.streak, recipients(), now=now, silence_hint=SILENCE_HINT)
    message_id = None
    try:
        message_id = deliver(email, dag_id, md, now)
    finally:  # the streak counts this run even when the mail could not go out
        save_state(md, dag_id, state.with_sent(key, message_id) if message_id else state)


def on_run_succeeded(context: Any, md: Any | None = None) -> None:
    md = md or _metadata()
    dag_id, run_id, _ = _run_of(context)
    state = load_state(md, dag_id)
    if state.streak is None:
        return  # the usual case: nothing to write
    now = datetime.now(UTC)
    state, streak = record_success(state, now)
    assert streak is not None
    facts = run_facts(md, dag_id, run_id, state="success")
    key = alert_key(dag_id, run_id, RECOVERED)
    email = recovery_alert(facts, streak, recipients(), now=now, silence_hint=SILENCE_HINT)
    message_id = None
    try:
        message_id = deliver(email, dag_id, md, now)
    finally:
        save_state(md, dag_id, state.with_sent(key) if message_id else state)


class OnCallNotifier(BaseNotifier):
    """A DAG's ``on_failure_callback`` (``"failed"``) or ``on_success_callback``
    (``"succeeded"``): tells on-call, once per run (see the module docstring)."""

    def __init__(self, event: str) -> None:
        super().__init__()
        if event not in ("failed", "succeeded"):
            raise ValueError(f"event must be 'failed' or 'succeeded', not {event!r}")
        self.event = event

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        # Nothing is templated. Skipping it also spares dag.test(), whose callbacks get the
        # serialized DAG, which has no template environment to render with.
        return None

    def notify(self, context: Any) -> None:
        if self.event == "failed":
            on_run_failed(context)
        else:
            on_run_succeeded(context)


# ----------------------------------------------------------------- deadline alerts
def deadline_missed_now(context: dict[str, Any], minutes: float, md: Any | None = None) -> None:
    """What ``deadline_missed`` does, synchronously (SDK calls block)."""
    md = md or _metadata()
    dag_run = context.get("dag_run") or {}
    dag_id = str(dag_run.get("dag_id") or "")
    run_id = str(dag_run.get("dag_run_id") or dag_run.get("run_id") or "")
    run_state = str(dag_run.get("state") or "")
    queued_at = _aware(dag_run.get("queued_at"))
    state = load_state(md, dag_id)
    why = deadline_reason(state, run_id, run_state, queued_at)
    # One line per missed deadline and what came of it: the triggerer's log is where a
    # platform engineer (and the demo test) reads why a deadline did or did not alert.
    log.info("deadline of %s %s (%s) missed: %s", dag_id, run_id, run_state,
             f"alert, the run {why}" if why else "no alert, not an outage of its own")
    if why is None:
        return
    now = datetime.now(UTC)
    facts = run_facts(md, dag_id, run_id, state=run_state, queued_at=queued_at)
    email = deadline_alert(facts, state.streak, recipients(), minutes=minutes, why=why,
                           now=now, silence_hint=SILENCE_HINT)
    deliver(email, dag_id, md, now)


async def deadline_missed(context: dict[str, Any], minutes: float) -> None:
    """Callback of the DAGs' Deadline Alert (``AsyncCallback``: runs in the triggerer).

    The mail is sent from a worker thread: SMTP and the SDK's Variable/XCom calls block,
    and the triggerer's event loop serves every other trigger meanwhile."""
    await asyncio.to_thread(deadline_missed_now, context, minutes)
