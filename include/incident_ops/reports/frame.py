"""Tickets as a pandas DataFrame, built column-wise, and its on-disk snapshot.

Two ways in, one frame out. ``frame_from_columns`` takes columns as a columnar source has
them (codes as categoricals, times as datetime64): no Python object per ticket, a million
rows typed in well under a second. ``frame_from_tickets`` takes the ``Ticket`` stream of
``ServiceDesk.search`` (what the fetch task reads today): a chunk of tickets at a time
becomes one tuple each (a single C-level ``attrgetter`` call), the tuples are transposed into
the columns, and the columns go through the same typing. Low-cardinality codes (and the
automation stamp, which repeats for every ticket a run touched) are categoricals with sorted
categories (small and fast to group); times are ``datetime64[us, UTC]``.

The fetch task writes the frame as ``tickets.csv.gz`` in the period's archive folder: the
exact input of the report, readable by anyone who wants to check a number, and the hand-off
to the compute task (XCom carries only its path).
"""

from __future__ import annotations

import csv
import gc
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC
from itertools import islice
from operator import attrgetter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from incident_ops.files import write_atomic
from incident_ops.model import Ticket
from incident_ops.policy import rules

# Coded fields: few distinct values, grouped on -> categoricals. The automation stamp
# repeats for every ticket one run changed, so it is one too.
CODE_COLUMNS = ("status", "priority", "impact", "source", "category", "system", "handler",
                "resolver_role", "close_code", "confirmation", "faulty_vendor", "config_item",
                "escalation", "automation")
# Free text and ids: kept as strings.
TEXT_COLUMNS = ("id", "subject", "duplicate_of", "idempotency_key")
DATE_COLUMNS = ("created", "resolved_at", "completed_at", "closed_at", "responded_at")
# Columns added after snapshots were first archived: an older snapshot reads them as empty.
LATER_COLUMNS = ("responded_at",)
# Derived from tuples on the ticket: "|"-joined rung names (a code column: few combinations),
# and how often 100.6 bounced it.
ESCALATION = "escalation"
BOUNCES = "bounces"
# The frame's (and the snapshot's) column order, as it has always been.
COLUMNS = ("id", "subject", "duplicate_of", "automation", "idempotency_key",
           "status", "priority", "impact", "source", "category", "system", "handler",
           "resolver_role", "close_code", "confirmation", "faulty_vendor", "config_item",
           "escalation", *DATE_COLUMNS, BOUNCES)

BOUNCE_KEY_PREFIX = f"{rules.BOUNCE_KEY}:"  # the closure pipeline's 100.6 action keys
_ATTRS = (*TEXT_COLUMNS, *CODE_COLUMNS, *DATE_COLUMNS, "automation_keys")
_NAT = np.iinfo(np.int64).min  # datetime64's NaT as an integer


def frame_from_tickets(tickets: Iterable[Ticket], chunk: int = 65_536) -> pd.DataFrame:
    """One row per ticket, the columns of ``COLUMNS``, typed (see module docstring)."""
    get = attrgetter(*_ATTRS)
    columns: dict[str, list[Any]] = {name: [] for name in (*_ATTRS[:-1], BOUNCES)}
    with _gc_paused():
        # A chunk of row tuples at a time, transposed into the columns; times become
        # microseconds and the tuples counts per chunk, so neither a million row tuples nor
        # five million datetime objects are held at once.
        it = iter(tickets)
        while rows := [get(t) for t in islice(it, chunk)]:
            for name, values in zip(_ATTRS, zip(*rows, strict=True), strict=True):
                if name in DATE_COLUMNS:
                    columns[name].append(_micros(values))
                elif name == ESCALATION:
                    columns[name].extend("|".join(rungs) if rungs else None
                                         for rungs in values)
                elif name == "automation_keys":
                    columns[BOUNCES].extend(
                        sum(1 for k in keys if k.startswith(BOUNCE_KEY_PREFIX)) if keys else 0
                        for keys in values)
                else:
                    columns[name].extend(values)
            del rows
        raw: dict[str, Any] = dict(columns)
        del columns
        for name in DATE_COLUMNS:
            raw[name] = np.concatenate(raw[name]).view("datetime64[us]") if raw[name] else \
                np.array([], dtype="datetime64[us]")
        return frame_from_columns(raw)


def frame_from_columns(columns: Mapping[str, Any]) -> pd.DataFrame:
    """The frame of ``frame_from_tickets`` from columns, for a source that reads columns
    (a desk's pages transposed, a columnar export) without a ``Ticket`` per row.

    One entry per name of ``COLUMNS``, all of one length (``None``: a column with no values):

    * text and code columns: a sequence of ``str`` or ``None``, or a ``pd.Categorical``
      (its unused categories dropped, the rest sorted, as ``astype("category")`` would);
    * date columns: ``datetime64`` values (a naive one is read as UTC, NaT for none), or
      a sequence of aware ``datetime`` or ``None``;
    * ``escalation``: the fired rungs ``"|"``-joined (``None`` for none);
    * ``bounces``: how many 100.6 bounce keys each ticket keeps.
    """
    missing = [c for c in COLUMNS if c not in columns]
    if missing:
        raise ValueError(f"ticket columns missing: {missing}")
    sizes = {len(v) for v in columns.values() if v is not None}
    if len(sizes) > 1:
        raise ValueError(f"ticket columns differ in length: {sorted(sizes)}")
    n = sizes.pop() if sizes else 0
    raw: dict[str, Any] = {}
    for name in (*TEXT_COLUMNS, *CODE_COLUMNS):
        values = columns[name]
        raw[name] = np.full(n, None, dtype=object) if values is None else values
    for name in DATE_COLUMNS:
        raw[name] = _utc_column(columns[name], n)
    raw[BOUNCES] = np.zeros(n, dtype=np.int32) if columns[BOUNCES] is None else \
        columns[BOUNCES]
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


def _utc_micros(values: Sequence[Any]) -> pd.Series:
    """Aware datetimes (or None) as datetime64[us, UTC]; a naive one is read as UTC."""
    return pd.Series(_micros(values).view("datetime64[us]")).dt.tz_localize("UTC")


def _micros(values: Sequence[Any]) -> np.ndarray:
    """Aware datetimes (or None) as UTC microseconds since the epoch (NaT's integer for
    None); a naive one is read as UTC."""
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
    return micros


def _utc_column(values: Any, n: int) -> pd.Series:
    """A date column as datetime64[us, UTC], from datetime64 values or datetime objects."""
    if values is None:
        return pd.Series(np.full(n, _NAT, dtype=np.int64).view("datetime64[us]")
                         ).dt.tz_localize("UTC")
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").dt.as_unit("us").reset_index(drop=True)
    if isinstance(values, np.ndarray | pd.Series | pd.Index) and \
            np.issubdtype(values.dtype, np.datetime64):
        naive = np.asarray(values).astype("datetime64[us]")
        return pd.Series(naive).dt.tz_localize("UTC")
    return _utc_micros(values)


def _code(values: Any) -> pd.Series:
    """A code column as a categorical of ``str``: only the categories used, sorted (what
    ``astype("category")`` gives), whatever categories a categorical came with."""
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        values = values.array
    if not isinstance(values, pd.Categorical):
        return pd.Series(values, dtype="str").astype("category")
    codes = values.codes.astype(np.int64)
    used = np.bincount(codes + 1, minlength=len(values.categories) + 1)[1:] > 0
    categories = values.categories.astype("str")[used]
    order = categories.argsort()
    # old code -> new code, -1 (missing) staying -1 at the end of the table
    recode = np.full(len(used) + 1, -1, dtype=np.int64)
    new = np.empty(len(order), dtype=np.int64)
    new[order] = np.arange(len(order))
    recode[np.flatnonzero(used)] = new
    return pd.Series(pd.Categorical.from_codes(recode[codes], categories=categories[order]))


def _typed(raw: dict[str, Any]) -> pd.DataFrame:
    data: dict[str, Any] = {}
    for name in TEXT_COLUMNS:
        data[name] = pd.Series(raw[name], dtype="str")
    for name in CODE_COLUMNS:
        data[name] = _code(raw[name])
    for name in DATE_COLUMNS:
        data[name] = raw[name]
    data[BOUNCES] = pd.Series(raw[BOUNCES], dtype="int32")
    frame = pd.DataFrame({name: pd.Series(data[name]).reset_index(drop=True)
                          for name in COLUMNS})
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
