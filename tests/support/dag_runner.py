"""Run one DAG with ``dag.test()`` in its own process, to be killed, raced or faulted.

``python -m tests.support.dag_runner SPEC.json RESULT.json``; SPEC holds:

- ``dag_id``, ``conf`` and ``logical_date`` (ISO; distinct per racing process);
- ``barrier``: {"dir": ..., "parties": N}: wait, just before applying, until N processes
  stand at the same point, so every racing run has made its plan from the same desk state
  and they all apply at once;
- ``env``: environment variables for this process only (another Fernet key, say);
- ``kill``: {"at": POINT, "nth": n}: SIGKILL this process (no cleanup, no ``finally``, as
  the kernel's OOM killer or a lost node would) at the n-th time the run reaches POINT:
    ``bulk``         just after a bulk desk write returned (closes done, nothing after),
    ``commit``       just after a single action's desk write (its messages not yet sent),
    ``create``       just before a ticket is created (a reopen: old ticket closed, no copy),
    ``sent``         just after the SMTP server accepted a mail, before it is struck off.
The product's code is not changed: the harness wraps the desk adapter's and the sender's
methods from outside, in this process only.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

KILL_POINTS = {"bulk": ("desk", "bulk_update", "after"), "commit": ("desk", "update", "after"),
               "create": ("desk", "create", "before"), "sent": ("mail", "send_email", "after")}


def _die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def arm_kill(point: str, nth: int) -> None:
    from incident_ops.airflow.runtime import AirflowNotifier
    from incident_ops.desk.rt.adapter import RequestTrackerDesk

    where, name, when = KILL_POINTS[point]
    owner: Any = RequestTrackerDesk if where == "desk" else AirflowNotifier
    real = getattr(owner, name)
    seen = {"n": 0}

    def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen["n"] += 1
        if when == "before" and seen["n"] == nth:
            _die()
        result = real(self, *args, **kwargs)
        if when == "after" and seen["n"] == nth:
            _die()
        return result

    setattr(owner, name, wrapped)


def arm_barrier(directory: str, parties: int, timeout: float = 120.0) -> None:
    from incident_ops.engine import Applier

    real = Applier.apply

    def wait_then_apply(self: Any, plan: Any, known_keys: Any = None) -> Any:
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{os.getpid()}.ready").write_text("ready")
        deadline = time.monotonic() + timeout
        while len(list(folder.glob("*.ready"))) < parties:
            if time.monotonic() > deadline:
                raise TimeoutError(f"barrier: {parties} parties never met")
            time.sleep(0.05)
        return real(self, plan, known_keys)

    Applier.apply = wait_then_apply  # type: ignore[method-assign]


def main(spec_path: str, result_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    os.environ.update(spec.get("env") or {})  # before Airflow reads its configuration
    from tests.support.airflow_dags import load_dag, task_states

    if spec.get("kill"):
        arm_kill(spec["kill"]["at"], int(spec["kill"].get("nth", 1)))
    if spec.get("barrier"):
        arm_barrier(spec["barrier"]["dir"], int(spec["barrier"]["parties"]))
    dag = load_dag(spec["dag_id"])
    kwargs: dict[str, Any] = {"run_conf": spec.get("conf") or {}}
    if spec.get("logical_date"):
        kwargs["logical_date"] = datetime.fromisoformat(spec["logical_date"])
    run = dag.test(**kwargs)
    Path(result_path).write_text(json.dumps({"run_id": run.run_id, "state": str(run.state),
                                             "states": task_states(run)}), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
