"""The archive folder of one report: ``reports/<kind>/<label>/`` and what is in it.

    tickets.csv.gz   the tickets the numbers were computed from (fetch)
    kpis.json        the KPIs (compute)
    charts/*.png     the charts (render)
    report.html      the report, charts linked as files: open it in a browser
    email.html       the same report as mailed, charts as cid: parts
    email.txt        the mail's plain-text version
    workbook.xlsx    the Excel workbook that was attached
    manifest.json    written last by render: subject, files and their digests
    sent.json        the period's send ledger (``engine.once.FileLedger``): written after
                     each successful send, it stops a second mail and lists every mail sent
                     for the period (Message-ID, language, who)

Every file is written to a temporary name and renamed, so a crash never leaves half a
file under the real name; the manifest is the render's commit point, and send refuses a
folder whose files do not match it (never an empty or half report).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from incident_ops.files import write_atomic
from incident_ops.notify.messages import Attachment, Email
from incident_ops.reports.periods import Period
from incident_ops.reports.render import XLSX, RenderedReport


class IncompleteReport(RuntimeError):
    """The archive folder lacks a file the manifest names, or a file changed since."""


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ReportArchive:
    root: Path  # the reports directory (config.reports_dir())
    period: Period

    @property
    def folder(self) -> Path:
        return self.root / self.period.kind / self.period.label

    @property
    def snapshot(self) -> Path:
        return self.folder / "tickets.csv.gz"

    @property
    def kpis(self) -> Path:
        return self.folder / "kpis.json"

    @property
    def manifest(self) -> Path:
        return self.folder / "manifest.json"

    @property
    def sent_marker(self) -> Path:
        return self.folder / "sent.json"

    def write_json(self, path: Path, document: dict[str, Any]) -> Path:
        text = json.dumps(document, ensure_ascii=False, indent=1, sort_keys=True)
        return write_atomic(path, text.encode("utf-8"))

    def write_rendered(self, report: RenderedReport, cids: dict[str, str],
                       extra: dict[str, Any]) -> dict[str, Any]:
        """Write every rendered file, then the manifest naming them (the commit point)."""
        files: dict[str, bytes] = {
            "report.html": report.archive_html.encode("utf-8"),
            "email.html": report.email_html.encode("utf-8"),
            "email.txt": report.email_text.encode("utf-8"),
            "workbook.xlsx": report.workbook,
        }
        for chart in report.charts:
            files[f"charts/{chart.name}.png"] = chart.png
        charts_dir = self.folder / "charts"
        if charts_dir.is_dir():  # a re-render may draw fewer charts: drop the stale ones
            for old in charts_dir.glob("*.png"):
                if f"charts/{old.name}" not in files:
                    old.unlink()
        for name, data in files.items():
            write_atomic(self.folder / name, data)
        manifest = {
            "subject": report.subject,
            "workbook_name": report.workbook_name,
            "charts": [{"file": f"charts/{c.name}.png", "cid": cids[c.name], "title": c.title}
                       for c in report.charts],
            "files": {name: digest(data) for name, data in files.items()},
            **extra,
        }
        self.write_json(self.manifest, manifest)
        return manifest

    def read_manifest(self) -> dict[str, Any]:
        try:
            manifest: dict[str, Any] = json.loads(self.manifest.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise IncompleteReport(f"{self.folder}: no manifest.json; render first") from exc
        for name, expected in manifest["files"].items():
            path = self.folder / name
            if not path.is_file() or digest(path.read_bytes()) != expected:
                raise IncompleteReport(f"{path}: missing or changed since the report was "
                                       "rendered; re-render before sending")
        return manifest

    def email(self, manifest: dict[str, Any], *, to: tuple[str, ...], cc: tuple[str, ...],
              key: str, references: tuple[str, ...] = ()) -> Email:
        """The e-mail exactly as rendered: body (HTML and text), inline charts, workbook."""
        images = tuple(Attachment(Path(c["file"]).name, (self.folder / c["file"]).read_bytes(),
                                  "image/png", inline_id=c["cid"]) for c in manifest["charts"])
        workbook = Attachment(manifest["workbook_name"],
                              (self.folder / "workbook.xlsx").read_bytes(), XLSX)
        text = (self.folder / "email.txt").read_text(encoding="utf-8") \
            if "email.txt" in manifest["files"] else ""  # rendered before there was one
        return Email(to=to, cc=cc, subject=manifest["subject"],
                     html=(self.folder / "email.html").read_text(encoding="utf-8"), text=text,
                     key=key, attachments=(*images, workbook), references=references)
