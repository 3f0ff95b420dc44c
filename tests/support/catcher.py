"""The demo's mail catcher (``scripts/mailcatcher.py``) as a process on free loopback ports,
and a sample of what the pipelines put into it.

``Catcher`` runs the script exactly as ``scripts/demo.sh`` does; ``fill_with_sample`` sends
it the sample manager report (inline charts, the workbook attached), an on-call alert and
two SMS, through the product's own senders (MIME builder, SMS gateway hook). Used by
``tests/integration/test_mailbox.py`` and ``scripts/render_mailbox_png.py``.
"""

from __future__ import annotations

import json
import os
import signal
import smtplib
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from tests.support import FROM_EMAIL, free_port

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "mailcatcher.py"


class Catcher:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.smtp_port, self.http_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, deadline_s: float = 20.0) -> Catcher:
        log = (self.root / "mailcatcher.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), "--dir", str(self.root / "outbox"), "--smtp-port",
             str(self.smtp_port), "--http-port", str(self.http_port)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                if requests.get(self.url + "/api/mail", timeout=2).ok:
                    return self
            except requests.ConnectionError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mail catcher did not start: "
                                   f"{(self.root / 'mailcatcher.log').read_text()[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)

    def __enter__(self) -> Catcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def smtp_uri(self) -> str:
        return (f"smtp://127.0.0.1:{self.smtp_port}?disable_ssl=true&disable_tls=true"
                f"&from_email={FROM_EMAIL.replace('@', '%40')}")

    def sms_connection(self) -> str:
        return json.dumps({"conn_type": "sms_gateway", "host": f"{self.url}/sms"})

    def mail(self) -> list[dict[str, Any]]:
        return list(requests.get(self.url + "/api/mail", timeout=10).json())

    def sms(self) -> list[dict[str, Any]]:
        return list(requests.get(self.url + "/api/sms", timeout=10).json())


@dataclass(frozen=True)
class Filled:
    report_subject: str
    workbook: tuple[str, bytes]  # the attachment's file name and bytes
    charts: int  # inline images of the report
    alert_subject: str
    sms_texts: tuple[str, ...]


def fill_with_sample(catcher: Catcher, work: Path) -> Filled:
    """Send the catcher what a demo morning looks like: a manager report, an on-call alert,
    two SMS. Needs ``AIRFLOW_CONN_SMS_MAILBOX`` free to set (done here)."""
    from incident_ops.airflow.provider.senders import build_mime, send_sms
    from incident_ops.notify.messages import Sms
    from incident_ops.notify.oncall import (
        OnCallState,
        RunFacts,
        TaskLink,
        failure_alert,
        record_failure,
    )
    from tests.support.report_sample import render_sample

    sample = render_sample(work, "zh")
    report = build_mime(sample.email, FROM_EMAIL)
    now = datetime.now(UTC)
    run = "scheduled__2026-11-26T07:31:00+00:00"
    base = "http://127.0.0.1:8080/dags/urgent_incidents/runs/" + run
    streak = record_failure(OnCallState(), run, now, ["plan", "report"]).streak
    assert streak is not None
    alert = failure_alert(
        RunFacts(dag_id="urgent_incidents", run_id=run, run_url=base, state="failed",
                 reason="task_failure",
                 failed_tasks=(TaskLink("plan", base + "/tasks/plan"),
                               TaskLink("report", base + "/tasks/report"))),
        streak, ["oncall@ops.example.cn"], now=now, silence_hint="")
    with smtplib.SMTP("127.0.0.1", catcher.smtp_port, timeout=30) as smtp:
        for email in (report, build_mime(alert, FROM_EMAIL)):
            smtp.send_message(email)
    texts = ("【紧急事件】#1802 计费系统全省批价中断，影响度：重大。请立即处置。",
             "【升级】#1517 营业厅开户缓慢 已超时 2 小时，请二线专家介入。")
    os.environ["AIRFLOW_CONN_SMS_MAILBOX"] = catcher.sms_connection()
    for i, (number, text) in enumerate(zip(("13800000031", "13800000041"), texts,
                                           strict=True)):
        send_sms(Sms(to=(number,), text=text, key=f"sample:{i}"), conn_id="sms_mailbox")
    workbook = next(a for a in sample.email.attachments if not a.inline_id)
    return Filled(report_subject=sample.email.subject,
                  workbook=(workbook.filename, workbook.content),
                  charts=sum(1 for a in sample.email.attachments if a.inline_id),
                  alert_subject=alert.subject, sms_texts=texts)
