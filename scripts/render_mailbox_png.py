"""Screenshot the demo mailbox: its index, and the manager report as it shows it.

    PYTHONPATH=include .venv/bin/python scripts/render_mailbox_png.py [--out-dir build/screenshots]

Starts ``scripts/mailcatcher.py`` on free loopback ports, sends it the sample of
``tests/support/catcher.py`` (the manager report with its inline charts and workbook, an
on-call alert, two SMS) and takes full-page screenshots in headless Chromium:

    mailbox.png          the index: mails with their headers and attachments, the SMS list
    mailbox-report.png   the report mail: headers, attachment, the body with its charts
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "include"), str(REPO)]

from scripts.render_report_png import quantize  # noqa: E402

from tests.support.browser import chromium  # noqa: E402
from tests.support.catcher import Catcher, fill_with_sample  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out-dir", type=Path, default=REPO / "build" / "screenshots",
                        help="where the pictures go (default: build/screenshots, a scratch "
                        "folder; --out-dir docs replaces the tracked ones)")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, Catcher(Path(tmp)) as catcher:
        sample = fill_with_sample(catcher, Path(tmp) / "work")
        report = next(m for m in catcher.mail() if m["subject"] == sample.report_subject)
        with chromium() as browser:
            # the index whole; the report mail down to its charts (the tables go on below)
            for name, url, width, height in (
                    ("mailbox.png", "/", 1100, 0),
                    ("mailbox-report.png", f"/mail/{report['id']}", 1000, 1500)):
                page = browser.open(catcher.url + url, width=width, height=height or 700)
                # the mail's frame sizes itself to the mail once that has loaded
                page.wait_for_function("!document.getElementById('body') || "
                                       "document.getElementById('body').style.height")
                out = args.out_dir / name
                if height:
                    page.screenshot(path=str(out))
                else:
                    browser.screenshot(page, out)
                quantize(out)
                print(f"{out} ({out.stat().st_size // 1024} KiB, {width} px)")


if __name__ == "__main__":
    main()
