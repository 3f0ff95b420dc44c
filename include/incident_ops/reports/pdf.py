"""HTML to PDF with headless Chromium: the Major Incident Report as a formal document.

The PDF is printed from the report's printable page (the same template as the screen page,
``printable=True``: A4, sign-off block), so the two never say different things. Chromium
embeds the fonts it lays the page out with (subsets), so the Chinese text reads the same on
a machine without Chinese fonts; the template asks for common CJK fonts first and falls back
to WenQuanYi Micro Hei, which ``scripts/install-system.sh`` and the image install.

The browser reads and writes local files, the report lives in the artefact store (a bucket
in a cluster): ``store_pdf`` copies the printable page to a temporary folder, prints it
there and stores the PDF beside the page.

Which Chromium: ``$INCIDENT_OPS_CHROMIUM``, else ``chromium`` (Debian) or
``chromium-browser`` / ``google-chrome`` on the PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from incident_ops.artefacts import ArtefactStore

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


class PdfUnavailable(RuntimeError):
    """No PDF could be made (no browser, or it failed); the HTML report still stands."""


def chromium_path() -> str | None:
    given = os.environ.get("INCIDENT_OPS_CHROMIUM")
    if given:
        return given if Path(given).exists() else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def html_to_pdf(html: Path, pdf: Path, *, timeout: float = 120) -> Path:
    """Print ``html`` (a local file) to ``pdf`` with the page's own size (its ``@page``),
    without the browser's header and footer; ``pdf`` is replaced only when it succeeded."""
    browser = chromium_path()
    if browser is None:
        raise PdfUnavailable("no Chromium found (set INCIDENT_OPS_CHROMIUM, or install "
                             "Debian's chromium)")
    pdf.parent.mkdir(parents=True, exist_ok=True)
    partial = pdf.with_name(f".{pdf.stem}.part.pdf")  # Chromium writes only to a .pdf name
    with tempfile.TemporaryDirectory(prefix="incident-ops-pdf-") as profile:
        # --no-sandbox: workers often run as root or in containers without user namespaces,
        # where the sandbox cannot start; the page is our own generated file (text escaped).
        command = [browser, "--headless", "--no-sandbox", "--disable-gpu",
                   "--disable-background-networking", "--disable-component-update",
                   "--no-first-run", "--disable-sync",
                   f"--user-data-dir={profile}", "--no-pdf-header-footer",
                   f"--print-to-pdf={partial}", html.resolve().as_uri()]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            partial.unlink(missing_ok=True)
            raise PdfUnavailable(f"{browser} could not print {html.name}: {exc}") from exc
    if done.returncode != 0 or not partial.exists() or partial.stat().st_size == 0:
        partial.unlink(missing_ok=True)
        tail = (done.stderr or done.stdout or "").strip().splitlines()[-3:]
        raise PdfUnavailable(f"{browser} exited {done.returncode} printing {html.name}: "
                             f"{' | '.join(tail)}")
    partial.replace(pdf)
    return pdf


def pdf_key(printable: str) -> str:
    """``…/EMR-1-print.html`` -> ``…/EMR-1.pdf``: the PDF's key beside its page."""
    return printable.removesuffix(".html").removesuffix("-print") + ".pdf"


def store_pdf(store: ArtefactStore, printable: str, *, timeout: float = 120) -> str:
    """Print the page stored at ``printable`` and store the PDF beside it; its key.

    The page is copied to a temporary folder for the browser (it reads ``file://``), the PDF
    read back from there and written through the store; nothing stays on this host."""
    with tempfile.TemporaryDirectory(prefix="incident-ops-report-") as work:
        page = Path(work) / printable.rsplit("/", 1)[-1]
        page.write_bytes(store.read_bytes(printable))
        pdf = html_to_pdf(page, Path(work) / "report.pdf", timeout=timeout)
        return store.write_bytes(pdf_key(printable), pdf.read_bytes())
