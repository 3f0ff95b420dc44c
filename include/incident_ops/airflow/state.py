"""What the pipelines keep in Airflow between runs: watermarks and outboxes, as Variables.

Both are small JSON values in Airflow's own metadata database, so every worker reads the same
ones and a platform team sees them under Admin ▸ Variables:

- ``incident_ops.watermark.<pipeline>``: where the next incremental read starts;
- ``incident_ops.outbox.<scope>``: what applied actions still owe (undelivered messages, a
  reopened copy not yet created...). Written only while the scope's desk lease is held.
"""

from __future__ import annotations

import json
import re
from typing import Any

from incident_ops.engine.outbox import Pending
from incident_ops.engine.watermark import Watermark

WATERMARK_PREFIX = "incident_ops.watermark."
OUTBOX_PREFIX = "incident_ops.outbox."


def _name(prefix: str, scope: str) -> str:
    return prefix + re.sub(r"[^A-Za-z0-9_.:-]+", "_", scope)[:200]


def _get(name: str) -> Any:
    from airflow.sdk import Variable

    raw = Variable.get(name, default=None)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        if str(raw).startswith("gAAAAA"):  # a Fernet token: encrypted, not decrypted here
            raise ValueError(
                f"Airflow Variable {name!r} is encrypted with a Fernet key this process does "
                f"not have: every Airflow component (scheduler, workers, API server, DAG "
                f"processor) must share one [core] fernet_key") from exc
        raise ValueError(f"Airflow Variable {name!r} does not hold JSON ({exc}); it is "
                         f"written by the pipelines only, something else changed it") from exc


def _set(name: str, value: Any, description: str) -> None:
    from airflow.sdk import Variable

    Variable.set(name, json.dumps(value, ensure_ascii=False, sort_keys=True),
                 description=description)


def read_watermark(pipeline: str) -> Watermark | None:
    data = _get(_name(WATERMARK_PREFIX, pipeline))
    return Watermark.from_dict(data) if data else None


def write_watermark(pipeline: str, mark: Watermark) -> None:
    _set(_name(WATERMARK_PREFIX, pipeline), mark.to_dict(),
         f"{pipeline}: the next run reads tickets updated since 'at' (see the README)")


class VariableOutbox:
    """``engine.outbox.Outbox`` in an Airflow Variable (one per scope)."""

    def __init__(self, scope: str) -> None:
        self.scope = scope
        self.name = _name(OUTBOX_PREFIX, scope)

    def load(self) -> dict[str, Pending]:
        data = _get(self.name) or {}
        return {key: Pending.from_dict(entry) for key, entry in data.items()}

    def save(self, entries: dict[str, Pending]) -> None:
        _set(self.name, {key: entry.to_dict() for key, entry in entries.items()},
             f"{self.scope}: follow-ups (messages, copies) applied actions still owe; "
             "empty when everything went out")
