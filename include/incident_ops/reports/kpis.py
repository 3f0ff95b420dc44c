"""Manager KPIs for one reporting period, with the previous period for comparison (pure).

Input: the ticket frame of ``reports.frame`` (every ticket created, resolved or closed in
the two periods), the period, and ``KpiSettings``. Output: ``PeriodKpis``, a few headline
numbers and small tables keyed by code; labels are the renderer's business. Everything is
a vectorised pandas operation over the whole frame, so a million tickets take seconds.

Which tickets count where:

* **volume** (by priority, system, source, category), urgent and major incidents,
  duplicates, faults by configuration item and vendor: tickets *created* in the period;
* **time to resolve** and **SLA compliance**: tickets *resolved* in the period. The
  resolution time is the desk's own (the last move to resolved, or the close of a ticket
  closed straight from work; the recorded actual completion time, 100.6.8, only where the
  desk gave none); a ticket counts as resolved only in status resolved or closed (a
  bounced ticket is back at work). The SLA clock is the escalation ladder's (``reports.sla``);
* **response compliance**: tickets *created* in the period, duplicates left out (they are
  answered through their master), against the ``respond`` target of their priority on the
  same clock. Response is the desk's first assignment (an owner set or a move out of
  ``new``). A ticket still unanswered counts as missed once its target passed before the
  period's end, and is not measured before that;
* **closure outcomes** (100.7.1 auto-closed, confirmed, 100.7.3 reopened, ...): tickets
  *closed* in the period, classified by the rule id of the ``automation`` stamp the
  engine writes (``"100.7.1 close.auto-source · run X"``, ``policy.rules``) and the close
  code (``reports.closure_outcomes``);
* **incomplete resolutions** (100.6 bounces) and escalations: tickets created or resolved in
  the period that carry the bounce key / an ``automation`` stamp of the completeness rule,
  or escalation rungs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from incident_ops.model import OPEN_STATUSES, UNSUCCESSFUL
from incident_ops.policy.escalation import SlaPolicy
from incident_ops.reference import Vocabulary
from incident_ops.reports.closure_outcomes import OUTCOMES, closure_outcomes
from incident_ops.reports.kpi_columns import DerivedColumns
from incident_ops.reports.periods import Period

NOT_SET = ""  # the code under which tickets without a value are counted

URGENT = "urgent"  # the priority that starts 100.5 / sub-process 101
MAJOR = "major"  # the impact of an emergency that needs a Major Incident Report (101.6)


@dataclass(frozen=True)
class KpiSettings:
    sla: SlaPolicy | None = None
    tz: str = "Asia/Shanghai"
    top_n: int = 10
    list_limit: int = 200  # rows kept in the urgent / major / reopened lists
    priorities: tuple[str, ...] = ("urgent", "high", "medium", "low")
    order: dict[str, tuple[str, ...]] = field(default_factory=dict)  # display order by field
    fault_categories: frozenset[str] = frozenset({"fault"})
    ci_categories: frozenset[str] = frozenset({"fault", "alarm"})
    rungs: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, vocab: Vocabulary, sla: SlaPolicy | None, *, tz: str,
                    top_n: int = 10, list_limit: int = 200) -> KpiSettings:
        cats = vocab.codes("categories")
        return cls(
            sla=sla, tz=tz, top_n=top_n, list_limit=list_limit,
            priorities=tuple(vocab.codes("priorities")),
            order={f: tuple(vocab.codes(s)) for f, s in (
                ("priority", "priorities"), ("system", "systems"), ("source", "sources"),
                ("category", "categories"))},
            fault_categories=frozenset(c for c in cats if vocab.attr("categories", c, "fault")),
            ci_categories=frozenset(c for c in cats if vocab.attr("categories", c, "needs_ci")),
            rungs=tuple(r.name for r in sla.ladder) if sla else ())


@dataclass
class PeriodKpis:
    period: Period
    previous: Period
    headline: dict[str, float | int | None]
    previous_headline: dict[str, float | int | None]
    tables: dict[str, pd.DataFrame]

    @property
    def is_empty(self) -> bool:
        """No ticket created, resolved or closed in the period."""
        return not any(self.headline[k] for k in ("created", "resolved", "closed"))

    def delta(self, key: str) -> float | int | None:
        now, before = self.headline.get(key), self.previous_headline.get(key)
        if now is None or before is None:
            return None
        return now - before

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN -> None); ``from_dict`` gives back equal tables."""
        return {
            "period": self.period.to_dict(), "previous": self.previous.to_dict(),
            "headline": self.headline, "previous_headline": self.previous_headline,
            "tables": {name: {"columns": list(t.columns),
                              "rows": _json_rows(t)} for name, t in self.tables.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PeriodKpis:
        tables = {name: pd.DataFrame(t["rows"], columns=t["columns"])
                  for name, t in data["tables"].items()}
        return cls(Period.from_dict(data["period"]), Period.from_dict(data["previous"]),
                   dict(data["headline"]), dict(data["previous_headline"]), tables)


def compute_kpis(frame: pd.DataFrame, period: Period, settings: KpiSettings) -> PeriodKpis:
    """The KPIs of ``period`` (and of the period before it, for the deltas)."""
    previous = period.previous()
    d = DerivedColumns(frame, settings.sla)
    cur, prev = d.masks(period), d.masks(previous)
    headline, tables = _period_numbers(d, cur, settings, lists=True)
    previous_headline, prev_tables = _period_numbers(d, prev, settings, lists=False)
    for name in ("volume_priority", "volume_system", "volume_source", "volume_category",
                 "closure_outcomes", "escalations"):
        tables[name] = _with_previous(tables[name], prev_tables[name])
    sla_prev = prev_tables["resolution_priority"].set_index("code")["sla_pct"]
    resp_prev = prev_tables["response_priority"].set_index("code")["response_pct"]
    resp = tables["response_priority"]
    resp["previous_response_pct"] = resp["code"].map(resp_prev).astype("float64")
    res = tables["resolution_priority"]
    res["previous_sla_pct"] = res["code"].map(sla_prev).astype("float64")
    tables["trend"] = _trend(d, cur, period, settings)
    return PeriodKpis(period, previous, headline, previous_headline, tables)


DETAIL_COLUMNS = ("id", "subject", "status", "priority", "impact", "source", "category",
                  "system", "handler", "resolver_role", "close_code", "config_item",
                  "faulty_vendor", "duplicate_of", "escalation", "automation")


def period_tickets(frame: pd.DataFrame, period: Period, settings: KpiSettings,
                   limit: int | None = None) -> tuple[pd.DataFrame, int]:
    """The tickets behind the numbers: created, resolved or closed in ``period``.

    Codes stay codes; times are naive local times of ``settings.tz`` (what a spreadsheet
    shows); the derived resolution time, SLA clock, target and verdict are added. Returns
    the first ``limit`` rows by creation time and how many there are in all.
    """
    d = DerivedColumns(frame, settings.sla)
    touched = d.masks(period)["touched"]
    total = int(touched.sum())
    order = frame["created"][touched].sort_values(kind="stable").index
    rows = order[:limit] if limit is not None else order
    out = frame.loc[rows, list(DETAIL_COLUMNS)].astype(object)
    for name, values in (("created_at", frame["created"]), ("completed", d.resolved_at),
                         ("closed_at", d.closed_at), ("responded_at", d.responded_at)):
        out[name] = values[rows].dt.tz_convert(settings.tz).dt.tz_localize(None)
    out["ttr_h"] = d.ttr_h[rows].round(2)
    out["sla_h"] = d.sla_h[rows].round(2)
    out["target_h"] = d.target_h[rows]
    measured = out["sla_h"].notna() & out["target_h"].notna()
    out["sla_met"] = (out["sla_h"] <= out["target_h"]).where(measured)
    out["response_h"] = d.response_h[rows].round(2)
    out["respond_target_h"] = d.respond_target_h[rows]
    answered = out["response_h"].notna() & out["respond_target_h"].notna()
    out["response_met"] = (out["response_h"] <= out["respond_target_h"]).where(answered)
    return out.reset_index(drop=True), total


def _period_numbers(d: DerivedColumns, m: dict[str, pd.Series], s: KpiSettings, *, lists: bool
                    ) -> tuple[dict[str, float | int | None], dict[str, pd.DataFrame]]:
    """Headline numbers and tables of one period; ``lists``: also the ticket lists."""
    f = d.f
    created, resolved, closed = m["created"], m["resolved"], m["closed"]
    tables: dict[str, pd.DataFrame] = {}
    for col in ("priority", "system", "source", "category"):
        tables[f"volume_{col}"] = _counts(f[col][created], s.order.get(col, ()), "created")
    tables["resolution_priority"] = _resolution(d, resolved, s)
    tables["response_priority"] = _response(d, m, s)
    outcomes = value_counts(closure_outcomes(f, d.automation, closed), fill=NOT_SET)
    tables["closure_outcomes"] = _count_table(outcomes, OUTCOMES, "closed", keep_order=True)
    if lists:
        tables["reopened"] = _ticket_list(d, closed & (f["close_code"] == UNSUCCESSFUL),
                                          s.list_limit)
    dup_table, dup_total, masters = _duplicates(f, created, s.top_n)
    tables["duplicates"] = dup_table
    bounce_table, handled, bounced = _bounces(d, (created | resolved), resolved, s.top_n)
    tables["bounces_by_handler"] = bounce_table
    tables["escalations"], escalated = _escalations(f, m["touched"], s.rungs)
    urgent = created & (f["priority"] == URGENT)
    major = created & (f["impact"] == MAJOR)
    if lists:
        tables["urgent"] = _ticket_list(d, urgent, s.list_limit)
        tables["major"] = _ticket_list(d, major, s.list_limit)
    ci_rows = created & f["category"].isin(s.ci_categories)
    fault_rows = created & f["category"].isin(s.fault_categories)
    tables["top_config_items"] = _top(f["config_item"][ci_rows], s.top_n)
    tables["top_vendors"] = _top(f["faulty_vendor"][fault_rows], s.top_n)

    ttr = d.ttr_h[resolved].dropna()
    measured = resolved & d.target_h.notna() & d.sla_h.notna()
    met = int((d.sla_h[measured] <= d.target_h[measured]).sum())
    n_closed = int(closed.sum())
    reopened = int(outcomes.get("reopened", 0))
    is_reopen = d.reopen_copy[created.to_numpy()]
    headline: dict[str, float | int | None] = {
        "created": int(created.sum()),
        "resolved": int(resolved.sum()),
        "closed": n_closed,
        "still_open": int((created & f["status"].isin(OPEN_STATUSES)).sum()),
        "mean_ttr_h": _num(ttr.mean()),
        "p90_ttr_h": _num(ttr.quantile(0.9)) if len(ttr) else None,
        "sla_measured": int(measured.sum()),
        "sla_met": met,
        "sla_pct": _pct(met, int(measured.sum())),
        "response_measured": int(m["response_measured"].sum()),
        "response_met": int(m["response_met"].sum()),
        "response_pct": _pct(int(m["response_met"].sum()), int(m["response_measured"].sum())),
        "auto_closed": int(outcomes.get("auto", 0)),
        "confirmed": int(outcomes.get("confirmed", 0)),
        "reopened": reopened,
        "reopen_rate_pct": _pct(reopened, n_closed),
        "reopen_tickets": int(is_reopen.sum()),
        "duplicates": dup_total,
        "duplicate_masters": masters,
        "bounced": bounced,
        "bounce_rate_pct": _pct(bounced, handled),
        "escalated": escalated,
        "urgent": int(urgent.sum()),
        "major": int(major.sum()),
        "bad_resolution_time": int((resolved & (d.bad_ttr | d.bad_record)).sum()),
    }
    return headline, tables


def _counts(values: pd.Series, order: Sequence[str], name: str, *,
            keep_order: bool = False) -> pd.DataFrame:
    """Counts by code: known codes in vocabulary order, then the others by count."""
    return _count_table(value_counts(values, fill=NOT_SET), order, name, keep_order=keep_order)


def _count_table(counts: pd.Series, order: Sequence[str], name: str, *,
                 keep_order: bool = False) -> pd.DataFrame:
    """``_counts`` from the counts (``value_counts``' order)."""
    counts = counts[counts > 0]
    known = [c for c in order if c in counts.index or keep_order]
    others = [c for c in counts.index if c not in order]
    codes = known + others
    n = counts.reindex(codes, fill_value=0).astype("int64")
    total = int(n.sum())
    return pd.DataFrame({"code": codes, name: n.to_numpy(),
                         "share_pct": [_pct(int(v), total) for v in n.to_numpy()]})


def value_counts(values: pd.Series, *, fill: str | None) -> pd.Series:
    """``values.astype(object).fillna(fill).value_counts()`` (``fill`` None: missing values
    dropped), for a categorical column counted on its codes: the same counts in the same
    order (by count, ties in order of first appearance, as pandas orders them)."""
    if not isinstance(values.dtype, pd.CategoricalDtype):
        plain = values.astype(object)
        return (plain.dropna() if fill is None else plain.fillna(fill)).value_counts()
    codes = values.cat.codes.to_numpy().astype(np.int64)
    if fill is None:
        codes = codes[codes >= 0]
    categories = values.cat.categories.astype(object)
    tally = np.bincount(codes + 1, minlength=len(categories) + 1)
    counts: dict[Any, int] = {}  # first appearance first; a category equal to ``fill`` merges
    for code in pd.unique(codes):
        key = fill if code < 0 else categories[code]
        counts[key] = counts.get(key, 0) + int(tally[code + 1])
    return pd.Series(list(counts.values()), index=pd.Index(list(counts), dtype=object),
                     dtype="int64", name="count").sort_values(ascending=False, kind="stable")


def _group_key(codes: pd.Series) -> pd.Series:
    """``codes`` with missing values as ``NOT_SET``, to group on; a categorical stays one
    (grouped on its codes; group with ``observed=True``)."""
    if not isinstance(codes.dtype, pd.CategoricalDtype):
        return codes.astype(object).fillna(NOT_SET)
    if NOT_SET not in codes.cat.categories:
        codes = codes.cat.add_categories([NOT_SET])
    return codes.fillna(NOT_SET)


def _with_previous(now: pd.DataFrame, before: pd.DataFrame) -> pd.DataFrame:
    value = now.columns[1]
    prev = before.set_index("code")[value]
    extra = [c for c in prev.index if c not in set(now["code"]) and prev[c] > 0]
    if extra:  # a code seen only last period still shows, with 0 now
        now = pd.concat([now, pd.DataFrame({"code": extra, value: 0, "share_pct": 0.0})],
                        ignore_index=True)
    now = now.copy()
    now["previous"] = now["code"].map(prev).fillna(0).astype("int64")
    now["delta"] = now[value] - now["previous"]
    return now


def _resolution(d: DerivedColumns, resolved: pd.Series, s: KpiSettings) -> pd.DataFrame:
    frame = pd.DataFrame({
        "code": _group_key(d.f["priority"][resolved]),
        "ttr_h": d.ttr_h[resolved], "sla_h": d.sla_h[resolved],
        "target_h": d.target_h[resolved]})
    frame["measured"] = frame["target_h"].notna() & frame["sla_h"].notna()
    frame["met"] = frame["measured"] & (frame["sla_h"] <= frame["target_h"])
    groups = frame.groupby("code", sort=False, observed=True)
    out = pd.DataFrame({
        "resolved": groups.size(),
        "mean_ttr_h": groups["ttr_h"].mean(),
        "p90_ttr_h": groups["ttr_h"].quantile(0.9),
        "target_h": groups["target_h"].max(),
        "measured": groups["measured"].sum(),
        "met": groups["met"].sum(),
    })
    out.index = out.index.astype(object)
    codes = [c for c in s.priorities if c in out.index] + \
        sorted(c for c in out.index if c not in s.priorities)
    out = out.reindex(codes)
    out["sla_pct"] = [_pct(int(m), int(n)) for m, n in zip(out["met"], out["measured"],
                                                            strict=True)]
    out = out.reset_index(names="code")
    out[["resolved", "measured", "met"]] = out[["resolved", "measured", "met"]].astype("int64")
    return out.astype({"mean_ttr_h": "float64", "p90_ttr_h": "float64", "target_h": "float64",
                       "sla_pct": "float64"})


def _response(d: DerivedColumns, m: dict[str, pd.Series], s: KpiSettings) -> pd.DataFrame:
    """Response to the tickets created in the period, by priority (module docstring)."""
    scope = m["created"] & d.respondable
    frame = pd.DataFrame({
        "code": _group_key(d.f["priority"][scope]),
        "wall_h": d.response_wall_h[scope].where(m["response_measured"][scope]),
        "target": d.respond_target_h[scope],
        "measured": m["response_measured"][scope], "met": m["response_met"][scope]})
    groups = frame.groupby("code", sort=False, observed=True)
    out = pd.DataFrame({"tickets": groups.size(), "measured": groups["measured"].sum(),
                        "met": groups["met"].sum(), "respond_target_h": groups["target"].max(),
                        "mean_response_h": groups["wall_h"].mean()})
    out.index = out.index.astype(object)
    codes = [c for c in s.priorities if c in out.index] + \
        sorted(c for c in out.index if c not in s.priorities)
    out = out.reindex(codes)
    out["response_pct"] = [_pct(int(x), int(n)) for x, n in zip(out["met"], out["measured"],
                                                                 strict=True)]
    out = out.reset_index(names="code")
    out[["tickets", "measured", "met"]] = out[["tickets", "measured", "met"]].astype("int64")
    return out.astype({"respond_target_h": "float64", "mean_response_h": "float64",
                       "response_pct": "float64"})


def _duplicates(f: pd.DataFrame, created: pd.Series, top_n: int
                ) -> tuple[pd.DataFrame, int, int]:
    masters = f["duplicate_of"][created].dropna()
    per_master = masters.value_counts()
    top = per_master.head(top_n)
    subjects = f.loc[f["id"].isin(top.index), ["id", "subject"]].drop_duplicates("id")
    table = pd.DataFrame({"master_id": top.index.astype(str), "duplicates": top.to_numpy()})
    table["subject"] = table["master_id"].map(subjects.set_index("id")["subject"]).fillna("")
    return table, int(len(masters)), int(len(per_master))


def _bounces(d: DerivedColumns, scope: pd.Series, resolved: pd.Series, top_n: int
             ) -> tuple[pd.DataFrame, int, int]:
    bounced = d.bounced & scope
    handled = resolved | bounced
    frame = pd.DataFrame({"handler": _group_key(d.f["handler"][handled]),
                          "bounced": bounced[handled]})
    # groups in order of first appearance (observed categories only), as on plain strings
    by = frame.groupby("handler", sort=False, observed=True)["bounced"].agg(["size", "sum"])
    by.index = by.index.astype(object)
    by.columns = ["handled", "bounced"]
    by = by[by["bounced"] > 0].sort_values(["bounced", "handled"], ascending=[False, False])
    by = by.head(top_n * 2).reset_index()
    by["rate_pct"] = [_pct(int(b), int(h)) for b, h in zip(by["bounced"], by["handled"],
                                                          strict=True)]
    return by.astype({"handled": "int64", "bounced": "int64"}), int(handled.sum()), \
        int(bounced.sum())


def _escalations(f: pd.DataFrame, scope: pd.Series, rungs: Sequence[str]
                 ) -> tuple[pd.DataFrame, int]:
    """Tickets per rung fired. The column holds few distinct rung combinations (a ladder
    is climbed in order), so each combination is split once and weighted by its count."""
    combos = _category_counts(f["escalation"], scope)
    combos = combos[(combos > 0) & (combos.index != "")]
    per_rung: dict[str, int] = {}
    for combo, n in combos.items():
        for rung in str(combo).split("|"):
            per_rung[rung] = per_rung.get(rung, 0) + int(n)
    # what value_counts gives for each rung repeated per ticket: by count, ties in order
    fired = pd.Series(list(per_rung.values()), index=pd.Index(list(per_rung), dtype=object),
                      dtype="int64").sort_values(ascending=False, kind="stable")
    return _count_table(fired, rungs, "tickets"), int(combos.sum())


def _category_counts(values: pd.Series, rows: pd.Series) -> pd.Series:
    """``values[rows].value_counts()``, for a categorical counted on its codes."""
    if not isinstance(values.dtype, pd.CategoricalDtype):
        return values[rows].value_counts()
    codes = values.cat.codes.to_numpy()[rows.to_numpy()]
    tally = np.bincount(codes[codes >= 0], minlength=len(values.cat.categories))
    # what Categorical.value_counts gives: category order, then by count (stable)
    return pd.Series(tally, index=values.cat.categories, name="count"
                     ).sort_values(ascending=False, kind="stable")


def _top(values: pd.Series, top_n: int) -> pd.DataFrame:
    counts = value_counts(values, fill=None)
    total = int(counts.sum())
    top = counts.head(top_n)
    return pd.DataFrame({"code": top.index.astype(str), "count": top.to_numpy(dtype=np.int64),
                         "share_pct": [_pct(int(v), total) for v in top.to_numpy()]})


LIST_COLUMNS = ("id", "subject", "priority", "impact", "system", "status", "handler")


def _ticket_list(d: DerivedColumns, rows: pd.Series, limit: int) -> pd.DataFrame:
    f = d.f
    first = f["created"][rows].sort_values(kind="stable").head(limit).index
    out = f.loc[first, list(LIST_COLUMNS)].astype(object)
    out["created"] = f["created"][first].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    out["resolved"] = d.resolved_at[first].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    out["ttr_h"] = d.ttr_h[first].round(2)
    out = out.reset_index(drop=True).astype(object)
    return out.where(out.notna().to_numpy(), None)


def _trend(d: DerivedColumns, m: dict[str, pd.Series], period: Period, s: KpiSettings
           ) -> pd.DataFrame:
    """Created and resolved per local hour (a daily report) or per local day."""
    daily = period.kind == "daily"
    n = 24 if daily else len(period.days)
    first_day = (period.first_day - date(1970, 1, 1)).days

    def per_bucket(moments: pd.Series) -> list[int]:
        """How many of ``moments`` fall in each bucket, counted on local microseconds."""
        moments = moments[moments.notna()]
        local = moments.dt.tz_convert(s.tz).dt.tz_localize(None).dt.as_unit("us")
        micros = local.to_numpy().view(np.int64)
        if daily:
            index = micros // 3_600_000_000 % 24
        else:
            index = micros // 86_400_000_000 - first_day
            index = index[(index >= 0) & (index < n)]
        return [int(c) for c in np.bincount(index, minlength=n)[:n]]

    labels = [f"{h:02d}:00" for h in range(24)] if daily else \
        [day.isoformat() for day in period.days]
    return pd.DataFrame({"bucket": labels,
                         "created": per_bucket(d.f["created"][m["created"]]),
                         "resolved": per_bucket(d.resolved_at[m["resolved"]])})


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def _num(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else round(float(value), 2)


def _json_rows(table: pd.DataFrame) -> list[list[Any]]:
    rows = table.astype(object).where(table.notna().to_numpy(), None).to_numpy().tolist()
    return [[_plain(v) for v in row] for row in rows]


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value
