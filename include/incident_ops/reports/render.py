"""Turning ``PeriodKpis`` into what managers receive: HTML, charts, workbook, the e-mail.

``render_report`` makes two HTML documents from one template: the archive copy links its
charts as files beside it (``charts/trend.png``), the e-mail copy as ``cid:`` parts of the
same message, so the mail shows its charts without fetching anything. Every ticket value
goes through jinja2's autoescape: a subject holding ``<script>`` is shown as text. The mail
also gets a plain-text version (the headline figures, the urgent and major incidents) for
clients that show no HTML and for spam filters that distrust HTML-only mail.
Pure apart from matplotlib/openpyxl working in memory; ``reports.archive`` writes the
result and builds the e-mail from what it wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from incident_ops.notify.compose import environment
from incident_ops.reports.charts import Chart, render_charts
from incident_ops.reports.kpis import PeriodKpis
from incident_ops.reports.labels import (
    HEADLINE_CARDS,
    HIGHER_IS_BETTER,
    LOWER_IS_BETTER,
    Labels,
)
from incident_ops.reports.workbook import build_workbook

TEMPLATE = "reports/manager_report.html.j2"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Tables shown in the mail, in order; the workbook has them all.
MAIL_TABLES = ("resolution_priority", "response_priority", "volume_system", "volume_source",
               "volume_category", "closure_outcomes", "escalations", "bounces_by_handler",
               "duplicates", "top_config_items", "top_vendors", "urgent", "major", "reopened")
# Columns of each table the mail shows (the workbook shows every column).
MAIL_COLUMNS = {
    "resolution_priority": ("code", "resolved", "mean_ttr_h", "p90_ttr_h", "target_h",
                            "sla_pct", "previous_sla_pct"),
    "response_priority": ("code", "tickets", "mean_response_h", "respond_target_h",
                          "response_pct", "previous_response_pct"),
    "bounces_by_handler": ("handler", "handled", "bounced", "rate_pct"),
    "duplicates": ("master_id", "subject", "duplicates"),
    "urgent": ("id", "subject", "system", "status", "ttr_h", "handler"),
    "major": ("id", "subject", "priority", "system", "status", "ttr_h", "handler"),
    "reopened": ("id", "subject", "system", "handler"),
}
# Tables of tickets: shown as a list (ticket and subject, then the other columns in a line).
TICKET_LISTS = ("urgent", "major", "reopened")
# Ticket lists the plain-text version repeats after the headline figures.
TEXT_TABLES = ("urgent", "major")
# Columns a narrow screen leaves out of the mail (where the client honours media queries).
OPTIONAL_COLUMNS = frozenset({"target_h", "previous_sla_pct", "respond_target_h",
                              "previous_response_pct"})
TEXT_COLUMNS = frozenset({"code", "subject", "handler", "system", "status", "priority", "id",
                          "master_id"})
CODED_COLUMNS = {"priority": "priorities", "system": "systems", "status": "statuses",
                 "impact": "impacts"}


@dataclass(frozen=True)
class RenderedReport:
    subject: str
    archive_html: str
    email_html: str
    email_text: str
    charts: list[Chart]
    workbook: bytes
    workbook_name: str


def content_id(kpis: PeriodKpis, chart: Chart) -> str:
    """A Content-ID unique to this report and chart (no angle brackets)."""
    return f"{chart.name}.{kpis.period.kind}.{kpis.period.label}@incident-ops"


def render_report(kpis: PeriodKpis, labels: Labels, detail: pd.DataFrame, detail_total: int,
                  *, dag_id: str, run_id: str, email_rows: int = 20,
                  sla_goal_pct: float = 90.0) -> RenderedReport:
    charts = render_charts(kpis, labels, sla_goal_pct=sla_goal_pct)
    workbook_name = f"incident-{kpis.period.kind}-{kpis.period.label}.xlsx"
    context = _context(kpis, labels, email_rows=email_rows, dag_id=dag_id, run_id=run_id,
                       workbook_name=workbook_name)
    template = environment().get_template(TEMPLATE)

    def html(src: dict[str, str]) -> str:
        shown = [{"src": src[c.name], "title": c.title, "width": c.width} for c in charts]
        return str(template.render(**context, charts=shown))

    return RenderedReport(
        subject=context["subject"],
        archive_html=html({c.name: f"charts/{c.name}.png" for c in charts}),
        email_html=html({c.name: f"cid:{content_id(kpis, c)}" for c in charts}),
        email_text=_plain_text(context, labels),
        charts=charts,
        workbook=build_workbook(kpis, labels, detail, detail_total),
        workbook_name=workbook_name)


def _context(kpis: PeriodKpis, labels: Labels, *, email_rows: int, dag_id: str, run_id: str,
             workbook_name: str) -> dict[str, Any]:
    p, prev = kpis.period, kpis.previous
    span = labels.day(p.first_day) if p.kind == "daily" else \
        f"{labels.day(p.first_day)} – {labels.day(p.last_day)}"
    title = labels.title(p.kind)
    return {
        "lang": "zh-CN" if labels.lang == "zh" else "en",
        "title": title,
        "subject": _subject(kpis, labels, title),
        "period_label": p.label,
        "period_text": f"{span} · {p.start:%Y-%m-%d %H:%M} – {p.end:%Y-%m-%d %H:%M} ({p.tz})",
        "previous_text": prev.label,
        "empty": kpis.is_empty,
        "cards": [_card(kpis, labels, key) for key in HEADLINE_CARDS],
        "tables": [t for t in (_mail_table(kpis, labels, name, email_rows)
                               for name in MAIL_TABLES) if t is not None],
        "lists": {name: _mail_table(kpis, labels, name, email_rows)
                  for name in TEXT_TABLES},
        "text": {k: labels.text(k) for k in ("period", "compared", "empty", "charts", "none")},
        "colon": labels.text("colon"),
        "attachment": labels.text("attachment", name=workbook_name),
        "footer": labels.text("footer", dag=dag_id, run=run_id),
    }


def _plain_text(context: dict[str, Any], labels: Labels) -> str:
    """The text/plain version: what a manager needs when the HTML is not shown."""
    colon = labels.text("colon")
    lines = [f"{context['title']} · {context['period_label']}",
             f"{context['text']['period']}{colon}{context['period_text']}",
             f"{context['text']['compared']}{colon}{context['previous_text']}", ""]
    if context["empty"]:
        lines += [context["text"]["empty"], ""]
    lines.append(labels.text("headline"))
    for card in context["cards"]:
        trend = card["change"] if card["change"] == "—" else \
            labels.text("change_and_previous", change=card["change"], value=card["previous"])
        lines.append(f"- {card['label']}{colon}{card['value']} ({trend})")
    for table in context["lists"].values():
        if context["empty"] or table is None or not table["rows"]:
            continue
        lines += ["", table["title"]]
        lines += [f"- {item['id']} {item['subject']} · " + " · ".join(item["meta"])
                  for item in table["items"]]
        if table["more"]:
            lines.append(table["more"])
    lines += ["", context["attachment"], labels.text("html_only"), "", context["footer"]]
    return "\n".join(lines) + "\n"


def _subject(kpis: PeriodKpis, labels: Labels, title: str) -> str:
    h = kpis.headline
    if kpis.is_empty:
        return f"【{title}】{kpis.period.label} {labels.text('empty')}" if labels.lang == "zh" \
            else f"{title} {kpis.period.label}: {labels.text('empty')}"
    sla = _fmt(h["sla_pct"], "%")
    if labels.lang == "zh":
        return (f"【{title}】{kpis.period.label} 新建 {h['created']} · 解决 {h['resolved']} · "
                f"SLA {sla} · 紧急 {h['urgent']}")
    return (f"{title} {kpis.period.label}: {h['created']} created, {h['resolved']} resolved, "
            f"SLA {sla}, {h['urgent']} urgent")


def _card(kpis: PeriodKpis, labels: Labels, key: str) -> dict[str, str]:
    unit = labels.unit(key)
    delta = kpis.delta(key)
    if delta is None or delta == 0:
        tone, change = "flat", "±0" if delta == 0 else "—"
    else:
        up = delta > 0
        good = (key in HIGHER_IS_BETTER and up) or (key in LOWER_IS_BETTER and not up)
        bad = (key in HIGHER_IS_BETTER and not up) or (key in LOWER_IS_BETTER and up)
        tone = "good" if good else "bad" if bad else "flat"
        change = ("▲ +" if up else "▼ −") + _fmt(abs(delta), "pt" if unit == "%" else unit)
    return {"label": labels.metric(key), "value": _fmt(kpis.headline.get(key), unit),
            "change": change, "tone": tone,
            "previous": _fmt(kpis.previous_headline.get(key), unit)}


def _mail_table(kpis: PeriodKpis, labels: Labels, name: str, limit: int
                ) -> dict[str, Any] | None:
    table = kpis.tables.get(name)
    if table is None:
        return None
    columns = [c for c in MAIL_COLUMNS.get(name, tuple(table.columns)) if c in table.columns]
    section = labels.code_section(name)
    rows = []
    for record in table.head(limit).to_dict("records"):
        row = []
        for col in columns:
            value = record[col]
            if col == "code":
                row.append(labels.code(section, value))
            elif col in CODED_COLUMNS:
                row.append(labels.code(CODED_COLUMNS[col], value))
            elif col == "id" or col == "master_id":
                row.append(f"#{value}")
            elif col == "delta":
                row.append(f"{int(value):+d}" if value else "0")
            elif col == "ttr_h":
                row.append("" if value is None or value != value else
                           labels.text("ttr_meta", value=_fmt(value, "h")))
            else:
                row.append(_fmt(value, "%" if col.endswith("_pct") else ""))
        rows.append(row)
    more = max(0, len(table) - limit)
    shown: dict[str, Any] = {"title": labels.table(name), "rows": rows,
                             "more": labels.text("more_rows", n=more) if more else ""}
    if name in TICKET_LISTS and columns[:2] == ["id", "subject"]:
        # A list, not a grid: the ticket and its subject on one line, the rest below it,
        # so seven columns need not squeeze into a phone's width.
        shown["kind"] = "tickets"
        shown["items"] = [{"id": row[0], "subject": row[1],
                           "meta": [cell for cell in row[2:] if cell not in ("", "—")]}
                          for row in rows]
        return shown
    shown.update(kind="grid",
                 header=[labels.column("label") if c == "code" else labels.column(c)
                         for c in columns],
                 numeric=[c not in TEXT_COLUMNS for c in columns],
                 wrap=[_wrap(c) for c in columns],
                 optional=[c in OPTIONAL_COLUMNS for c in columns])
    return shown


def _wrap(column: str) -> str:
    """How a cell of ``column`` may break across lines on a narrow screen (CSS)."""
    if column not in TEXT_COLUMNS or column in ("id", "master_id"):
        return "white-space:nowrap"  # numbers and ticket numbers stay whole
    if column == "subject":
        return "overflow-wrap:anywhere"  # free text: even a long URL must not widen the page
    return "min-width:2.5em"  # names: wrap between words (Chinese: between characters)


def _fmt(value: Any, unit: str = "") -> str:
    """A number as the report shows it: counts whole, hours and percentages to 0.1."""
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    if not isinstance(value, (int, float)):
        return str(value)
    if unit in ("h", "%", "pt") or (isinstance(value, float) and not value.is_integer()):
        text = f"{float(value):.1f}"
    else:
        text = str(int(value))
    return text + {"h": "h", "%": "%", "pt": " pt"}.get(unit, "")
