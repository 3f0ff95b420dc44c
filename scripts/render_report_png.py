"""Render a sample manager report from made-up tickets and screenshot it as the mail shows it.

    PYTHONPATH=include .venv/bin/python scripts/render_report_png.py \
        [--out docs/report-email.png] [--language zh] [--keep DIR]

No desk and no Airflow: deterministic sample tickets for 2026-11-25 (and the day before)
go through the same compute and render code as the DAG. The mail's ``cid:`` images are
swapped for ``data:`` URIs (what a mail client does with the inline parts) and headless
Chromium (Debian package ``chromium``) takes the screenshot; the empty margin below the
report is trimmed off.
"""

from __future__ import annotations

import argparse
import base64
import random
import shutil
import subprocess
import sys
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))

from incident_ops.config import load_vocabulary, load_yaml  # noqa: E402
from incident_ops.model import Ticket  # noqa: E402
from incident_ops.policy.escalation import SlaPolicy  # noqa: E402
from incident_ops.reports.archive import ReportArchive  # noqa: E402
from incident_ops.reports.frame import frame_from_tickets  # noqa: E402
from incident_ops.reports.kpis import KpiSettings, compute_kpis, period_tickets  # noqa: E402
from incident_ops.reports.labels import Labels  # noqa: E402
from incident_ops.reports.periods import Period  # noqa: E402
from incident_ops.reports.render import content_id, render_report  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SUBJECTS = {
    "crm": ["CRM 客户资料查询超时", "CRM 工单提交报错 500", "CRM 登录页面无法打开"],
    "billing": ["计费账务月结任务失败", "话单批价进程积压", "BIL-DB-RAC02 表空间使用率 96%"],
    "boss": ["BOSS 开户流程卡在审批环节", "BOSS 接口调用超时", "套餐变更后资费未生效"],
    "sms-gw": ["短信网关下发延迟超过 10 分钟", "SMSGW-01 SMPP 连接中断"],
    "portal": ["网上营业厅缴费页面白屏", "支付网关回调失败"],
    "oss": ["OSS 告警平台数据缺失", "工单流转引擎异常"],
    "dw": ["经营分析日报数据未生成", "ETL 任务执行超时"],
}
HANDLERS = ["zhang.wei", "li.na", "wang.fang", "liu.yang", "chen.jing", "zhao.lei"]
STAMPS = {"monitoring": "100.7.1 close.auto-source · run scheduled__x",
          "auto-transfer": "100.7.1 close.auto-source · run scheduled__x",
          "phone": "100.7.1 close.confirmed · run scheduled__x",
          "email": "100.7.4 close.handled-by-support · run scheduled__x"}


def sample_tickets(period: Period, seed: int = 25) -> list[Ticket]:
    """About 150 tickets for ``period`` and 120 for the one before, plus notable ones."""
    rng = random.Random(seed)
    tickets: list[Ticket] = []
    for current, count in ((period.previous(), 120), (period, 150)):
        start = current.start_utc
        for _ in range(count):
            system = rng.choice(list(SUBJECTS))
            created = start + timedelta(minutes=rng.randint(0, 24 * 60 - 1))
            priority = rng.choices(["urgent", "high", "medium", "low"], [2, 18, 50, 30])[0]
            source = rng.choice(["monitoring", "auto-transfer", "phone", "email", "portal"])
            category = "alarm" if source == "monitoring" else rng.choice(
                ["fault", "fault", "request", "consult", "data-fix"])
            status = rng.choices(["closed", "resolved", "assigned-l1", "in-progress"],
                                 [55, 25, 12, 8])[0]
            hours = rng.expovariate(1 / (3 if priority in ("urgent", "high") else 14))
            done = created + timedelta(hours=hours) if status in ("closed", "resolved") else None
            unsuccessful = status == "closed" and rng.random() < 0.05
            tid = str(10000 + len(tickets))
            tickets.append(Ticket(
                id=tid, subject=rng.choice(SUBJECTS[system]), status=status,
                priority=priority, created=created, updated=done or created,
                impact=rng.choices(["high", "medium", "low"], [10, 50, 40])[0], source=source,
                category=category, system=system, handler=rng.choice(HANDLERS),
                close_code=("unsuccessful" if unsuccessful else "solved")
                if status == "closed" else None,
                config_item=f"{system.upper()}-APP-0{rng.randint(1, 4)}"
                if category in ("alarm", "fault") else None,
                faulty_vendor=rng.choice(["亚信", "华为", "中兴", "浪潮"])
                if category == "fault" else None,
                completed_at=done, resolved_at=done,
                closed_at=done + timedelta(hours=1) if done and status == "closed" else None,
                automation="100.7.3 confirm.rejected · run x" if unsuccessful
                else STAMPS.get(source) if status == "closed" else None,
                escalation=("at-risk", "breached")[: rng.choice([0, 0, 0, 1, 2])],
                automation_keys=("bounce:x",) if rng.random() < 0.06 else (),
                duplicate_of=str(10000 + rng.randint(0, 5)) if rng.random() < 0.1 else None))
    t0 = period.start_utc + timedelta(hours=2, minutes=14)
    tickets += [
        Ticket(id="20001", subject="计费系统全省话单批价中断，影响实时扣费", status="resolved",
               priority="urgent", impact="major", source="monitoring", category="fault",
               system="billing", handler="chen.jing", created=t0, updated=t0,
               config_item="BIL-RATING-01", faulty_vendor="思特奇",
               completed_at=t0 + timedelta(hours=3, minutes=40),
               resolved_at=t0 + timedelta(hours=3, minutes=40),
               escalation=("at-risk", "breached", "convene", "management")),
        Ticket(id="20002", subject='<script>alert("x")</script> 营业厅页面注入测试',
               status="assigned-l2", priority="urgent", source="portal", category="fault",
               system="portal", handler="liu.yang", created=t0 + timedelta(hours=9),
               updated=t0 + timedelta(hours=9)),
    ]
    return tickets


def screenshot(html: Path, png: Path, width: int = 820, height: int = 6000) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("chromium not found: apt-get install -y chromium")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                        "--disable-background-networking", "--disable-component-update",
                        "--hide-scrollbars", f"--user-data-dir={profile}",
                        f"--window-size={width},{height}", f"--screenshot={png}",
                        html.as_uri()], check=True, capture_output=True, timeout=120)
    trim_bottom(png)


def trim_bottom(png: Path, margin: int = 16) -> None:
    """Cut the uniform background below the report (the window is taller than the page)."""
    from PIL import Image

    with Image.open(png) as image:
        rgb = image.convert("RGB")
    background = rgb.getpixel((rgb.width - 1, rgb.height - 1))
    width, bottom = rgb.width, rgb.height
    pixels = rgb.load()
    assert pixels is not None
    while bottom > 1 and all(pixels[x, bottom - 1] == background for x in range(0, width, 4)):
        bottom -= 1
    cropped = rgb.crop((0, 0, width, min(rgb.height, bottom + margin)))
    # A flat-colour page: a 256-colour palette looks the same at a third of the size.
    cropped.quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                     dither=Image.Dither.NONE).save(png, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "report-email.png")
    parser.add_argument("--language", default="zh", choices=["zh", "en"])
    parser.add_argument("--keep", type=Path, help="also keep the rendered archive folder here")
    args = parser.parse_args()

    period = Period("daily", date(2026, 11, 25))
    vocab = load_vocabulary()
    settings = KpiSettings.from_config(vocab, SlaPolicy.from_dict(load_yaml("sla.yaml")),
                                       tz=period.tz)
    frame = frame_from_tickets(sample_tickets(period))
    kpis = compute_kpis(frame, period, settings)
    detail, total = period_tickets(frame, period, settings)
    report = render_report(kpis, Labels(vocab, args.language), detail, total,
                           dag_id="incident_report_daily",
                           run_id=f"scheduled__{datetime(2026, 11, 25, 23, 30):%Y-%m-%dT%H:%M}")
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        archive = ReportArchive(root, period)
        archive.write_rendered(report, {c.name: content_id(kpis, c) for c in report.charts},
                               {"sample": True})
        preview = report.email_html
        for chart in report.charts:  # what the mail client does with the inline parts
            data = base64.b64encode(chart.png).decode("ascii")
            preview = preview.replace(f"cid:{content_id(kpis, chart)}",
                                      f"data:image/png;base64,{data}")
        page = archive.folder / "email-preview.html"
        page.write_text(preview, encoding="utf-8")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        screenshot(page, args.out)
    print(f"{args.out} ({args.out.stat().st_size // 1024} KiB): {report.subject}")


if __name__ == "__main__":
    main()
