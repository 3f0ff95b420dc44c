"""Screenshot the sample manager report as a mail client shows it, on a desktop and a phone.

    PYTHONPATH=include .venv/bin/python scripts/render_report_png.py \
        [--out-dir build/screenshots] [--language zh] [--keep DIR]

No desk and no Airflow: the deterministic sample of ``tests/support/report_sample.py``
(2026-11-25 and the day before) goes through the same compute, render and MIME code as the
DAG. The mail's inline parts are saved beside its HTML with the ``cid:`` links pointed at
them (what a mail client does), and headless Chromium (Debian's ``chromium``, driven by
Playwright, ``tests/support/browser.py``) takes full-page screenshots:

    report-email.png        820 px wide, a desktop mail client's reading pane
    report-email-phone.png  400 px wide, a phone

Each rendering is checked for horizontal overflow before it is saved.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "include"), str(REPO)]

from incident_ops.airflow.provider.senders import build_mime  # noqa: E402
from tests.support.browser import chromium  # noqa: E402
from tests.support.mail import save_html_view  # noqa: E402
from tests.support.report_sample import render_sample  # noqa: E402

SHOTS = {"report-email.png": (820, 1), "report-email-phone.png": (400, 1)}
SENDER = "incident-ops@ops.example.cn"


def quantize(png: Path) -> None:
    """A flat-colour page: a 256-colour palette looks the same at a third of the size."""
    from PIL import Image

    with Image.open(png) as image:
        rgb = image.convert("RGB")
    rgb.quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                 dither=Image.Dither.NONE).save(png, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out-dir", type=Path, default=REPO / "build" / "screenshots",
                        help="where the pictures go (default: build/screenshots, a scratch "
                        "folder; --out-dir docs replaces the tracked ones)")
    parser.add_argument("--language", default="zh", choices=["zh", "en"])
    parser.add_argument("--keep", type=Path, help="also keep the rendered archive folder here")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        sample = render_sample(root, args.language)
        message = message_from_bytes(bytes(build_mime(sample.email, SENDER)),
                                     policy=policy.default)
        assert isinstance(message, EmailMessage)
        page = save_html_view(message, root / "mail-view")
        with chromium() as browser:
            for name, (width, scale) in SHOTS.items():
                shown = browser.open(page, width=width, scale=scale)
                layout = browser.layout(shown)
                if not layout.fits():
                    raise SystemExit(f"the mail does not fit {width} px: {layout}")
                out = browser.screenshot(shown, args.out_dir / name)
                quantize(out)
                print(f"{out} ({out.stat().st_size // 1024} KiB, {width} px)")
        print(sample.report.subject)


if __name__ == "__main__":
    main()
