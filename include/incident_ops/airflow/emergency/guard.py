"""One emergency per incident, checked by the emergency run itself (issue 24).

The API server refuses a second trigger over REST and the form (``trigger_guard``); a run
created any other way (``airflow dags trigger`` writes to the database directly, a script,
a cleared run) is checked here, in ``validate``, before anything is sent or written.

A task in Airflow 3 reads the metadata only through the Task SDK, which lists no runs with
their conf. So each run writes a *claim* (``policy.emergency_overlap.RunClaim``: its incident,
its emergency, when it was triggered) as an XCom of ``validate`` first thing, then reads the
claims of the other runs still running: the runs whose last task is not finished, confirmed
running or queued by their run state. A run that has not claimed yet (its ``validate`` not
started) is waited for while its ``validate`` is scheduled, queued or running, up to
``UNCLAIMED_WAIT_S``, so that the run triggered first goes on whichever ``validate`` the
scheduler starts first; past that, or with its ``validate`` not scheduled at all, it is not
in the way (it reads this run's claim when it starts). Each run claims before it looks, so
of two runs triggered together at least the later reader sees the other, and exactly one
of them goes on.
A refused run fails at once (no retry) naming the running emergency and linking to it;
Airflow's failed-run alert tells on-call (``alerting``); nobody of the emergency is told.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from datetime import UTC
from typing import Any
from urllib.parse import quote

from incident_ops.airflow.emergency.ids import VALIDATE
from incident_ops.policy import emergency_overlap as overlap

log = logging.getLogger(__name__)

DAG_ID = "emergency_response"
CLAIM_KEY = "emergency_claim"
LAST_TASK = "aftermath.announce_closed"  # unfinished in every run still going
RUNNING = ("queued", "running")
FINISHED = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})


def run_url(run_id: str) -> str:
    """A run's page in the Airflow UI (``$INCIDENT_OPS_AIRFLOW_URL``, the address people
    open)."""
    base = os.environ.get("INCIDENT_OPS_AIRFLOW_URL", "http://127.0.0.1:8080").rstrip("/")
    return f"{base}/dags/{DAG_ID}/runs/{quote(run_id, safe='')}"


def emergency_id(conf: dict[str, Any], run_id: str) -> str:
    continuation = conf.get("continuation") or None
    return str(continuation["emergency_id"]) if continuation else run_id


def order_stamp(when: Any) -> str:
    """A trigger time as claims compare it (fixed width, UTC)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") if when else ""


def own_claim(context: Any) -> overlap.RunClaim:
    run = context["dag_run"]
    params = context["params"]
    return overlap.RunClaim(
        run_id=run.run_id, ticket_id=str(params["ticket_id"]),
        emergency_id=emergency_id(dict(params), run.run_id),
        run_after=order_stamp(getattr(run, "run_after", None) or run.start_date),
        dry_run=bool(params.get("dry_run")), start_anyway=bool(params.get("start_anyway")),
        triggered_by=getattr(run, "triggering_user_name", None))


def _text(state: Any) -> str:
    return str(getattr(state, "value", state))


ABOUT_TO_CLAIM = frozenset({"scheduled", "queued", "running"})  # a validate on its way


def others_running(ti: Any, me: overlap.RunClaim) -> tuple[list[overlap.RunClaim], list[str]]:
    """The claims of the other emergency runs still running, and the runs that have not
    claimed yet but whose ``validate`` is scheduled, queued or running (about to claim; a run
    whose ``validate`` nobody has scheduled is not waited for)."""
    if ti.get_dr_count(dag_id=DAG_ID, states=list(RUNNING)) <= 1:
        return [], []
    states = ti.get_task_states(dag_id=DAG_ID, task_ids=[LAST_TASK, VALIDATE])
    claims, unclaimed = [], []
    for run_id, tasks in states.items():
        if run_id == me.run_id or _text(tasks.get(LAST_TASK)) in FINISHED:
            continue
        if _text(ti.get_dagrun_state(dag_id=DAG_ID, run_id=run_id)) not in RUNNING:
            continue
        data = ti.xcom_pull(task_ids=VALIDATE, dag_id=DAG_ID, key=CLAIM_KEY, run_id=run_id)
        if isinstance(data, dict):
            claims.append(overlap.RunClaim.from_dict(data))
        elif _text(tasks.get(VALIDATE)) in ABOUT_TO_CLAIM:
            unclaimed.append(run_id)
    return claims, unclaimed


# How long a run waits for the other running emergency runs to claim their incident before it
# decides without them. A run triggered first whose ``validate`` a busy scheduler starts late
# would otherwise find a run triggered after it already started, and be the one refused
# (seen on CI: a person's REST trigger refused in favour of a CLI trigger 6 s later).
UNCLAIMED_WAIT_S = 90.0
UNCLAIMED_PAUSE_S = 2.0


def claim_incident(context: Any, *, sleep: Callable[[float], None] = time.sleep,
                   clock: Callable[[], float] = time.monotonic) -> list[overlap.RunClaim]:
    """RunClaim the run's incident; fail the run (``AirflowFailException``) when another
    emergency of the incident is running and ``start_anyway`` is not given. Returns the
    running emergencies a ``start_anyway`` starts beside (none, normally).

    Runs still running that have not claimed yet are waited for (up to ``UNCLAIMED_WAIT_S``):
    with every claim in, the run triggered first goes on whatever order the scheduler
    started the two ``validate`` tasks in."""
    from airflow.sdk.exceptions import AirflowFailException

    params = context["params"]
    problem = overlap.reason_problem(params)
    if problem:
        raise AirflowFailException(f"Invalid start_anyway: {problem}")
    me = own_claim(context)
    if me.dry_run:
        return []  # sends and creates nothing: in nobody's way, nobody in its way
    ti = context["ti"]
    # RunClaim first, then look: of two runs checking at once, the later reader sees the other.
    ti.xcom_push(CLAIM_KEY, me.to_dict())
    claims, unclaimed = others_running(ti, me)
    blocking = overlap.in_the_way(me, claims)
    until = clock() + UNCLAIMED_WAIT_S
    if unclaimed and not blocking:
        log.info("waiting up to %.0f s for run(s) %s to claim their incident",
                 UNCLAIMED_WAIT_S, ", ".join(unclaimed))
    while unclaimed and not blocking and clock() < until:
        sleep(UNCLAIMED_PAUSE_S)
        claims, unclaimed = others_running(ti, me)
        blocking = overlap.in_the_way(me, claims)
    if unclaimed and not blocking:
        log.info("run(s) %s have not claimed an incident yet: they check this run when they "
                 "start", ", ".join(unclaimed))
    if blocking and not me.start_anyway:
        ti.xcom_push(CLAIM_KEY, {**me.to_dict(), "status": overlap.REFUSED})
        message = overlap.refusal(me.ticket_id, [(c.run_id, c.triggered_by, run_url(c.run_id))
                                                 for c in blocking])
        log.error("%s", message)
        raise AirflowFailException(message)
    ti.xcom_push(CLAIM_KEY, {**me.to_dict(), "status": overlap.STARTED})
    if blocking:
        log.warning("started anyway beside the running emergency run(s) %s: %s",
                    ", ".join(c.run_id for c in blocking), params.get("start_anyway_reason"))
    return blocking
