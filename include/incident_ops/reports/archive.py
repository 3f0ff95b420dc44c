"""The archive of one report: ``<kind>/<label>/`` in the artefact store, and what is in it.

    tickets.csv.gz   the tickets the numbers were computed from (fetch)
    kpis.json        the KPIs (compute)
    charts/*.png     the charts (render)
    report.html      the report, charts linked as files: open it in a browser
    email.html       the same report as mailed, charts as cid: parts
    email.txt        the mail's plain-text version
    workbook.xlsx    the Excel workbook that was attached
    manifest.json    written last by render: subject, files and their digests
    sent.json        the period's send ledger (``engine.once.StoreLedger``): written after
                     each successful send, it stops a second mail and lists every mail sent
                     for the period (Message-ID, language, who)

Every object is written whole (``artefacts``: a rename in a folder, one PUT in a bucket),
so a crash never leaves half a file under the real name; the manifest is the render's
commit point, and send refuses an archive whose files do not match it (never an empty or
half report).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from incident_ops.artefacts import ArtefactStore, as_store, join
from incident_ops.notify.messages import Attachment, Email
from incident_ops.reports.periods import Period
from incident_ops.reports.render import XLSX, RenderedReport


class IncompleteReport(RuntimeError):
    """The archive lacks a file the manifest names, or a file changed since."""


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ReportArchive:
    root: ArtefactStore | Path  # the artefact store (a Path: that folder)
    period: Period
    store: ArtefactStore = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "store", as_store(self.root))

    @property
    def folder(self) -> str:
        return join(self.period.kind, self.period.label)

    def key(self, name: str) -> str:
        return join(self.folder, name)

    @property
    def snapshot(self) -> str:
        return self.key("tickets.csv.gz")

    @property
    def kpis(self) -> str:
        return self.key("kpis.json")

    @property
    def manifest(self) -> str:
        return self.key("manifest.json")

    @property
    def sent_marker(self) -> str:
        return self.key("sent.json")

    def url(self, key: str | None = None) -> str:
        return self.store.url(key or self.folder)

    def read(self, key: str) -> bytes:
        return self.store.read_bytes(key)

    def write(self, key: str, data: bytes) -> str:
        return self.store.write_bytes(key, data)

    def write_json(self, key: str, document: dict[str, Any]) -> str:
        text = json.dumps(document, ensure_ascii=False, indent=1, sort_keys=True)
        return self.store.write_bytes(key, text.encode("utf-8"))

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
        charts = self.key("charts")
        for old in self.store.keys(charts):  # a re-render may draw fewer charts
            if old.endswith(".png") and old[len(self.folder) + 1:] not in files:
                self.store.delete(old)
        for name, data in files.items():
            self.store.write_bytes(self.key(name), data)
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
            manifest: dict[str, Any] = json.loads(self.read(self.manifest).decode("utf-8"))
        except FileNotFoundError as exc:
            raise IncompleteReport(f"{self.url()}: no manifest.json; render first") from exc
        for name, expected in manifest["files"].items():
            try:
                data = self.read(self.key(name))
            except FileNotFoundError:
                data = None
            if data is None or digest(data) != expected:
                raise IncompleteReport(f"{self.url(self.key(name))}: missing or changed since "
                                       "the report was rendered; re-render before sending")
        return manifest

    def email(self, manifest: dict[str, Any], *, to: tuple[str, ...], cc: tuple[str, ...],
              key: str, references: tuple[str, ...] = ()) -> Email:
        """The e-mail exactly as rendered: body (HTML and text), inline charts, workbook."""
        images = tuple(Attachment(c["file"].rsplit("/", 1)[-1], self.read(self.key(c["file"])),
                                  "image/png", inline_id=c["cid"]) for c in manifest["charts"])
        workbook = Attachment(manifest["workbook_name"],
                              self.read(self.key("workbook.xlsx")), XLSX)
        text = self.read(self.key("email.txt")).decode("utf-8") \
            if "email.txt" in manifest["files"] else ""  # rendered before there was one
        return Email(to=to, cc=cc, subject=manifest["subject"],
                     html=self.read(self.key("email.html")).decode("utf-8"), text=text,
                     key=key, attachments=(*images, workbook), references=references)
