"""Tickets as a pandas DataFrame, built column-wise, and its on-disk snapshot.

The report pipeline never holds a list of ``Ticket`` objects and a frame at the same time:
tickets stream from the desk into one tuple each (a single C-level ``attrgetter`` call),
the tuples are transposed into columns, and each column becomes a typed array in one
vectorised step. Low-cardinality codes are categoricals (small and fast to group); times are
``datetime64[us, UTC]``. A million tickets become a frame in a few seconds.

The fetch task writes the frame as ``tickets.csv.gz`` in the period's archive folder: the
exact input of the report, readable by anyone who wants to check a number, and the hand-off
to the compute task (XCom carries only its path).
"""

from __future__ import annotations

import csv
import gc
import io
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC
from operator import attrgetter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from incident_ops.files import write_atomic
from incident_ops.model import Ticket
from incident_ops.policy import rules

# Coded fields: few distinct values, grouped on -> categoricals.
CODE_COLUMNS = ("status", "priority", "impact", "source", "category", "system", "handler",
                "resolver_role", "close_code", "confirmation", "faulty_vendor", "config_item",
                "escalation")
# Free text and ids: kept as strings.
TEXT_COLUMNS = ("id", "subject", "duplicate_of", "automation", "idempotency_key")
DATE_COLUMNS = ("created", "resolved_at", "completed_at", "closed_at", "responded_at")
# Columns added after snapshots were first archived: an older snapshot reads them as empty.
LATER_COLUMNS = ("responded_at",)
# Derived from tuples on the ticket: "|"-joined rung names (a code column: few combinations),
# and how often 100.6 bounced it.
ESCALATION = "escalation"
BOUNCES = "bounces"
COLUMNS = (*TEXT_COLUMNS, *CODE_COLUMNS, *DATE_COLUMNS, BOUNCES)

BOUNCE_KEY_PREFIX = f"{rules.BOUNCE_KEY}:"  # the closure pipeline's 100.6 action keys
_ATTRS = (*TEXT_COLUMNS, *CODE_COLUMNS, *DATE_COLUMNS, "automation_keys")
_NAT = np.iinfo(np.int64).min  # datetime64's NaT as an integer


def frame_from_tickets(tickets: Iterable[Ticket]) -> pd.DataFrame:
    """One row per ticket, the columns of ``COLUMNS``, typed (see module docstring)."""
    get = attrgetter(*_ATTRS)
    with _gc_paused():
        rows = [get(t) for t in tickets]
        columns: list[tuple[Any, ...]] = list(zip(*rows, strict=True)) if rows else \
            [() for _ in _ATTRS]
        del rows  # the transposed columns are all we need; free the row tuples early
        raw: dict[str, Any] = dict(zip(_ATTRS, columns, strict=True))
        raw[ESCALATION] = ["|".join(rungs) if rungs else None for rungs in raw[ESCALATION]]
        raw[BOUNCES] = [sum(1 for k in keys if k.startswith(BOUNCE_KEY_PREFIX)) if keys else 0
                        for keys in raw.pop("automation_keys")]
        for name in DATE_COLUMNS:
            raw[name] = _utc_micros(raw[name])
        return _typed(raw)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while millions of acyclic tuples are built.

    Each generation-2 pass walks every live object, and building the columns creates a
    million container objects: with the collector running, the build takes twice as long.
    Nothing built here forms a cycle, so nothing is lost by collecting afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _utc_micros(values: tuple[Any, ...]) -> pd.Series:
    """Aware datetimes (or None) as datetime64[us, UTC]; a naive one is read as UTC."""
    if any(d is not None and d.tzinfo is None for d in values):
        # The port promises aware times; should one slip through, never read it in the
        # server's local zone (which is what datetime.timestamp() would do).
        values = tuple(d.replace(tzinfo=UTC) if d is not None and d.tzinfo is None else d
                       for d in values)
    seconds = np.array([d.timestamp() if d is not None else np.nan for d in values],
                       dtype=np.float64)
    missing = np.isnan(seconds)
    micros = np.zeros(len(values), dtype=np.int64)
    # float64 holds today's epoch microseconds exactly enough (2**53 us is year 2255).
    micros[~missing] = np.round(seconds[~missing] * 1_000_000).astype(np.int64)
    micros[missing] = _NAT
    return pd.Series(micros.view("datetime64[us]")).dt.tz_localize("UTC")


def _typed(raw: dict[str, Any]) -> pd.DataFrame:
    data: dict[str, Any] = {}
    for name in TEXT_COLUMNS:
        data[name] = pd.Series(raw[name], dtype="str")
    for name in CODE_COLUMNS:
        data[name] = pd.Series(raw[name], dtype="str").astype("category")
    for name in DATE_COLUMNS:
        data[name] = raw[name]
    data[BOUNCES] = pd.Series(raw[BOUNCES], dtype="int32")
    frame = pd.DataFrame({name: pd.Series(col).reset_index(drop=True) for name, col in
                          data.items()})
    frame["subject"] = frame["subject"].fillna("")
    return frame


# -- the snapshot on disk ---------------------------------------------------------------------

def snapshot_bytes(frame: pd.DataFrame) -> bytes:
    """``frame`` as gzipped CSV (what the archive stores as ``tickets.csv.gz``)."""
    out = frame.copy()
    for name in DATE_COLUMNS:
        out[name] = out[name].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # Every field quoted: the csv writer quotes only fields holding "\n", so a lone "\r"
    # (RT keeps them in titles and configuration items) would end the row on reading.
    buffer = io.BytesIO()
    out.to_csv(buffer, index=False, encoding="utf-8", quoting=csv.QUOTE_ALL,
               compression={"method": "gzip", "compresslevel": 3, "mtime": 0})
    return buffer.getvalue()


def write_snapshot(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` to a file, atomically: a reader sees the old file or the new one."""
    write_atomic(path, snapshot_bytes(frame))
    return path


def read_snapshot(path: Path) -> pd.DataFrame:
    """The frame ``write_snapshot`` wrote, with the same columns and types."""
    return snapshot_from_bytes(path.read_bytes(), str(path))


def snapshot_from_bytes(data: bytes, where: str = "snapshot") -> pd.DataFrame:
    """The frame ``snapshot_bytes`` made, with the same columns and types."""
    # Only the empty field is missing: a configuration item really called "NA" or "null"
    # must stay a value, which pandas' default NA spellings would swallow.
    text = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, na_values=[""],
                       compression="gzip", encoding="utf-8")
    for name in LATER_COLUMNS:
        if name not in text.columns:
            text[name] = pd.Series(pd.NA, index=text.index, dtype="str")
    missing = [c for c in COLUMNS if c not in text.columns]
    if missing:
        raise ValueError(f"{where}: not a ticket snapshot (missing columns {missing})")
    raw: dict[str, Any] = {c: text[c] for c in (*TEXT_COLUMNS, *CODE_COLUMNS)}
    for name in DATE_COLUMNS:
        raw[name] = pd.to_datetime(text[name], utc=True, format="ISO8601").dt.as_unit("us")
    raw[BOUNCES] = text[BOUNCES].fillna("0").astype("int32")
    return _typed(raw)
