"""Draw docs/major-incident-report.png: the 101.6 report of the sample emergency, in Chromium.

    PYTHONPATH=include .venv/bin/python scripts/render_major_incident_png.py [OUT.png]

The sample is ``tests/unit/emergency_sample.py`` (a major billing outage: plan route, a
rejected vendor round, a lifted one with an emergency change). Needs Debian's ``chromium``
and a CJK font (``fonts-noto-cjk``) so the Chinese renders as text, not boxes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "include"), str(REPO / "tests" / "unit")]

from emergency_sample import brief, rounds  # noqa: E402

from incident_ops.reports.emergency_report import render_report, report_context  # noqa: E402

WIDTH, HEIGHT = 1100, 2460  # tall enough for the whole sample report in one shot


def main(out: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("chromium not found: apt-get install -y chromium fonts-noto-cjk")
    rs, decisions, notes = rounds()
    ctx = report_context(brief(), rs, decisions, notes,
                         generated_at=datetime(2026, 11, 26, 3, 30, tzinfo=UTC))
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(render_report(ctx), encoding="utf-8")
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                        "--disable-background-networking", "--disable-component-update",
                        "--hide-scrollbars", f"--window-size={WIDTH},{HEIGHT}",
                        f"--user-data-dir={tmp}/profile", f"--screenshot={out}",
                        page.as_uri()], check=True, timeout=120, capture_output=True)
    print(out)


if __name__ == "__main__":
    out = (Path(sys.argv[1]) if len(sys.argv) > 1
           else REPO / "build" / "screenshots" / "major-incident-report.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    main(out)
