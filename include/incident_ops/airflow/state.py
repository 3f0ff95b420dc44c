"""What the pipelines keep in Airflow between runs: watermarks and outboxes, as Variables.

Both are small JSON values in Airflow's own metadata database, so every worker reads the same
ones and a platform team sees them under Admin ▸ Variables:

- ``incident_ops.watermark.<pipeline>``: where the next incremental read starts;
- ``incident_ops.outbox.<scope>``: what applied actions still owe (undelivered messages, a
  reopened copy not yet created...). Written only while the scope's desk lease is held.

Either one unreadable (another Fernet key, a value something else wrote) stops the task at
once, before any desk write or mail, without a retry and without overwriting it.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from incident_ops.engine.outbox import Pending
from incident_ops.engine.watermark import Watermark

log = logging.getLogger(__name__)

WATERMARK_PREFIX = "incident_ops.watermark."
OUTBOX_PREFIX = "incident_ops.outbox."


def _name(prefix: str, scope: str) -> str:
    return prefix + re.sub(r"[^A-Za-z0-9_.:-]+", "_", scope)[:200]


KEY_ADVICE = (
    "Every Airflow component (API server, scheduler, workers, DAG processor, triggerer) must "
    "have the same [core] fernet_key (AIRFLOW__CORE__FERNET_KEY). To rotate it, give every "
    "component 'NEW_KEY,OLD_KEY' (the new key first), run 'airflow rotate-fernet-key', then "
    "drop the old key (docs/exactly-once.md, 'Fernet keys')")


def _unreadable(name: str, why: str) -> Exception:
    """A stop, not an empty list: a process that cannot read what the pipelines owe must not
    act (it would decide again what is owed, and overwrite the record with its own) and a
    retry cannot cure it, so the task fails at once and on-call hears."""
    from airflow.sdk.exceptions import AirflowFailException

    return AirflowFailException(
        f"Airflow Variable {name!r} exists but this process cannot read it: {why}. Nothing "
        f"was applied and the Variable was left as it is; the run stops here. {KEY_ADVICE}.")


def _get(name: str) -> Any:
    from airflow.sdk import Variable

    raw = Variable.get(name, default=None)
    if raw is None and _exists(name):
        # Airflow answers "not found" for a Variable it cannot decrypt (it logs "Can't
        # decrypt _val" where the key is): told apart from a missing one by its key.
        raise _unreadable(name, "it is encrypted with a Fernet key this process does not "
                                "have (Airflow logs \"Can't decrypt _val\")")
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        if str(raw).startswith("gAAAAA"):  # a Fernet token: encrypted, not decrypted here
            raise _unreadable(name, "it is encrypted and this process has no Fernet key "
                                    "that decrypts it") from exc
        raise _unreadable(name, f"it does not hold JSON ({exc}); it is written by the "
                                "pipelines only, something else changed it") from exc


def _exists(name: str) -> bool:
    from airflow.sdk import Variable

    try:
        return name in Variable.keys(prefix=name)
    except Exception as exc:  # noqa: BLE001 - outside a task (no supervisor to ask)
        log.debug("cannot list Variables here (%s): %r read as missing", exc, name)
        return False


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
