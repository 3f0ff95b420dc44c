"""The report's charts as PNG bytes (matplotlib, Agg backend: no display needed).

Every chart is drawn for one size on screen, ``WIDTH`` CSS pixels, the width of a phone and
half the mail's width on a desktop (where two sit side by side), so its lettering reads the
same on both: a 9 pt label is 12 CSS px. The PNG has ``SCALE`` times the pixels, sharp on
high-density screens; the mail shows it at ``Chart.width`` and smaller screens scale it down.

Chinese labels need a font with CJK glyphs; matplotlib's bundled DejaVu has none and would
draw empty boxes. ``cjk_font()`` looks for one (Noto Sans CJK, WenQuanYi, Droid Sans
Fallback, ... via fontconfig); without one, the charts fall back to English labels and the
report says so in the log, rather than mailing boxes.
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from incident_ops.reports.kpis import PeriodKpis
from incident_ops.reports.labels import Labels

log = logging.getLogger(__name__)

PREFERRED_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC",
                   "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Droid Sans Fallback",
                   "AR PL UMing CN", "Noto Serif CJK SC")
COLORS = {"now": "#2f6fb5", "before": "#b9cde5", "resolved": "#3a9d5d", "bad": "#c9453b"}
WIDTH = 348  # CSS px a chart is laid out for
SCALE = 2  # image pixels per CSS px
DPI = 96 * SCALE  # CSS has 96 px per inch: figure inches * 96 = CSS px


@dataclass(frozen=True)
class Chart:
    name: str  # file stem and Content-ID stem
    title: str
    png: bytes
    width: int = WIDTH  # CSS px to show it at (the PNG is SCALE times wider)


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The family name of an installed font with Chinese glyphs, registered with matplotlib."""
    from matplotlib import font_manager

    known = {f.name for f in font_manager.fontManager.ttflist}
    for name in PREFERRED_FONTS:
        if name in known:
            return name
    # Fonts installed after matplotlib built its cache are unknown to it: ask fontconfig.
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return None
    try:
        out = subprocess.run([fc_list, ":lang=zh", "file", "family"], capture_output=True,
                             text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        path, _, families = line.partition(":")
        if not path.strip():
            continue
        try:
            font_manager.fontManager.addfont(path.strip())
        except (OSError, RuntimeError, ValueError):
            continue
        return font_manager.FontProperties(fname=path.strip()).get_name() or \
            families.split(",")[0].strip()
    return None


def render_charts(kpis: PeriodKpis, labels: Labels, *, sla_goal_pct: float = 90.0
                  ) -> list[Chart]:
    """The charts for ``kpis`` (none for an empty period: there is nothing to draw).

    ``sla_goal_pct``: priorities below it are drawn red, with the goal as a dashed line.
    """
    if kpis.is_empty:
        return []
    import matplotlib

    matplotlib.use("Agg")  # before pyplot; a worker has no display
    font = cjk_font() if labels.lang == "zh" else None
    if labels.lang == "zh" and font is None:
        log.warning("no font with Chinese glyphs found (install fonts-noto-cjk or "
                    "fonts-wqy-microhei); charts are labelled in English")
        labels = Labels(labels.vocab, "en")
    style: dict[str, Any] = {"font.size": 9, "axes.spines.top": False,
                             "axes.spines.right": False}
    if font:
        style["font.family"] = [font, "DejaVu Sans"]
    with matplotlib.rc_context(style):  # type: ignore[arg-type]  # keys are rcParams names
        charts = [_trend(kpis, labels), _priority(kpis, labels), _system(kpis, labels),
                  _sla(kpis, labels, sla_goal_pct), _outcomes(kpis, labels)]
    return [c for c in charts if c is not None]


def _figure(height: float) -> tuple[Any, Any]:
    """A figure ``WIDTH`` CSS px wide and ``height`` CSS px high."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH / 96, height / 96), dpi=DPI)  # no pyplot: no global figure registry
    return fig, fig.add_subplot()


def _png(fig: Any, name: str, title: str) -> Chart:
    from PIL import Image

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    # Flat colours on white: a 256-colour palette looks the same at about a third of the
    # bytes, which the mail carries five times.
    with Image.open(io.BytesIO(buffer.getvalue())) as image:
        palette = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                                dither=Image.Dither.NONE)
    out = io.BytesIO()
    palette.save(out, format="PNG", optimize=True)
    return Chart(name, title, out.getvalue())


def _counts_axis(axis: Any) -> None:
    """Whole-number ticks: a count of tickets is never 2.5."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(nbins=5, integer=True))


def _trend(kpis: PeriodKpis, labels: Labels) -> Chart:
    t = kpis.tables["trend"]
    title = labels.text("chart_trend")
    fig, ax = _figure(240)
    x = range(len(t))
    ax.bar(x, t["created"], color=COLORS["now"], label=labels.text("trend_created"))
    ax.plot(x, t["resolved"], color=COLORS["resolved"], marker="o", markersize=3,
            label=labels.text("trend_resolved"))
    step = max(1, -(-len(t) // 6))  # at most six labels: "11-01" labels collide beyond
    ax.set_xticks(list(x)[::step])
    ax.set_xticklabels([str(b)[5:] if len(str(b)) == 10 else str(b)
                        for b in t["bucket"]][::step], rotation=0)
    top = max(int(t["created"].max()), int(t["resolved"].max()), 1)
    ax.set_ylim(0, top * 1.3)  # headroom so the legend never covers a bar
    _counts_axis(ax.yaxis)
    ax.legend(frameon=False, loc="upper right", ncol=2)
    ax.set_title(title)
    return _png(fig, "trend", title)


def _priority(kpis: PeriodKpis, labels: Labels) -> Chart | None:
    t = kpis.tables["volume_priority"]
    if t.empty:
        return None
    title = labels.text("chart_priority")
    fig, ax = _figure(230)
    names = [labels.code("priorities", c) for c in t["code"]]
    x = range(len(t))
    ax.bar([i - 0.2 for i in x], t["created"], width=0.4, color=COLORS["now"],
           label=labels.text("this_period"))
    ax.bar([i + 0.2 for i in x], t["previous"], width=0.4, color=COLORS["before"],
           label=labels.text("previous_period"))
    ax.set_xticks(list(x))
    ax.set_xticklabels(names)
    for i, v in zip(x, t["created"], strict=True):
        ax.annotate(str(int(v)), (i - 0.2, v), ha="center", va="bottom", fontsize=8)
    _counts_axis(ax.yaxis)
    ax.legend(frameon=False)
    ax.set_title(title)
    return _png(fig, "priority", title)


def _horizontal(table: Any, value: str, section: str, title: str, name: str,
                labels: Labels) -> Chart | None:
    if table.empty or int(table[value].sum()) == 0:
        return None
    rows = table[table[value] > 0].sort_values(value).tail(10)
    names = [_wrap_label(labels.code(section, c)) for c in rows["code"]]
    lines = sum(name.count("\n") + 1 for name in names)
    fig, ax = _figure(60 + 16 * lines + 6 * len(rows))
    ax.barh(names, rows[value], color=COLORS["now"])
    for i, v in enumerate(rows[value]):
        ax.annotate(f" {int(v)}", (v, i), va="center", fontsize=8)
    _counts_axis(ax.xaxis)
    ax.set_title(title)
    return _png(fig, name, title)


def _wrap_label(text: str, width: int = 22) -> str:
    """``text`` on lines of about ``width`` columns (a Chinese character takes two), so a
    long category name does not squeeze the bars off a phone-sized chart."""
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if line and _columns(candidate) > width:
            lines.append(line)
            candidate = word
        line = candidate
    return "\n".join([*lines, line])


def _columns(text: str) -> int:
    return sum(2 if ord(ch) >= 0x1100 else 1 for ch in text)


def _system(kpis: PeriodKpis, labels: Labels) -> Chart | None:
    return _horizontal(kpis.tables["volume_system"], "created", "systems",
                       labels.text("chart_system"), "system", labels)


def _outcomes(kpis: PeriodKpis, labels: Labels) -> Chart | None:
    return _horizontal(kpis.tables["closure_outcomes"], "closed", "outcomes",
                       labels.text("chart_outcomes"), "outcomes", labels)


def _sla(kpis: PeriodKpis, labels: Labels, goal: float) -> Chart | None:
    t = kpis.tables["resolution_priority"].dropna(subset=["sla_pct"])
    if t.empty:
        return None
    title = labels.text("chart_sla")
    fig, ax = _figure(220)
    names = [labels.code("priorities", c) for c in t["code"]]
    values = [float(v) for v in t["sla_pct"]]
    bars = ax.bar(names, values, color=[COLORS["now"] if v >= goal else COLORS["bad"]
                                        for v in values])
    ax.bar_label(bars, labels=[f"{v:.0f}%" for v in values], fontsize=8)
    ax.set_ylim(0, 110)
    ax.axhline(goal, color="#888", linewidth=0.8, linestyle="--")
    ax.set_title(title)
    return _png(fig, "sla", title)
