"""A realistic sample for the manager report: about 270 tickets over two days, rendered
the way the DAG renders them (no desk, no Airflow), for the layout and workbook tests and
the screenshots in docs/ (``scripts/render_report_png.py``).

Deterministic: the same seed gives the same tickets, so the pictures change only when the
report's code does.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from incident_ops.artefacts import ArtefactStore
from incident_ops.config import load_contacts, load_vocabulary, load_yaml
from incident_ops.model import Ticket
from incident_ops.notify.messages import Email
from incident_ops.pipelines.reports import prepare_email
from incident_ops.policy.escalation import SlaPolicy
from incident_ops.reports.archive import ReportArchive, digest
from incident_ops.reports.frame import frame_from_tickets
from incident_ops.reports.kpis import KpiSettings, PeriodKpis, compute_kpis, period_tickets
from incident_ops.reports.labels import Labels
from incident_ops.reports.periods import Period
from incident_ops.reports.render import RenderedReport, content_id, render_report
from incident_ops.reports.settings import ReportSettings

DAY = Period("daily", date(2026, 11, 25))
RUN_ID = "scheduled__2026-11-25T23:30:00+00:00"

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



@dataclass(frozen=True)
class Sample:
    language: str
    labels: Labels
    archive: ReportArchive
    kpis: PeriodKpis
    report: RenderedReport
    email: Email  # as the send task would mail it


def render_sample(root: ArtefactStore | Path, language: str = "zh", *, period: Period = DAY,
                  extra: Sequence[Ticket] = ()) -> Sample:
    """Render the sample report for ``period`` into an archive in the store ``root`` (a
    folder: the store on it)."""
    vocab = load_vocabulary()
    settings = KpiSettings.from_config(vocab, SlaPolicy.from_dict(load_yaml("sla.yaml")),
                                       tz=period.tz)
    frame = frame_from_tickets([*sample_tickets(period), *extra])
    kpis = compute_kpis(frame, period, settings)
    detail, total = period_tickets(frame, period, settings)
    labels = Labels(vocab, language)
    report = render_report(kpis, labels, detail, total,
                           dag_id=f"incident_report_{period.kind}", run_id=RUN_ID)
    archive = ReportArchive(root, period)
    archive.write_json(archive.kpis, kpis.to_dict())
    archive.write_rendered(report, {c.name: content_id(kpis, c) for c in report.charts},
                           {"language": language, "kpis_digest": digest(archive.read(archive.kpis)),
                            "sample": True})
    email = prepare_email(archive, ReportSettings.from_dict(load_yaml("reports.yaml")),
                          load_contacts(), ())
    return Sample(language, labels, archive, kpis, report, email)
