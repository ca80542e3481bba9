"""Render a run's HTML report to a PNG for the README, with a headless Chromium and no network.

    python packaging/report_screenshot.py REPORT_HTML_OR_RUN_DIR [--out resources/screenshots/report.png] [--size 1150x1800]

Given a run folder, it first writes that run's report into a temporary folder. The browser runs
with a throw-away profile and every host name unresolvable, so the picture also shows that the
page needs nothing from outside.

Why not PySide6's QtWebEngine: the project installs PySide6-Essentials, which has no QtWebEngine,
and the PySide6-Addons 6.12 wheel for Linux x86_64 has none either. Chromium comes from the
system instead: Debian's ``chromium-headless-shell`` (or ``chromium``), or Google Chrome.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PALETTE_COLOURS = 256  # a quantised PNG is about a third of the size and looks the same for a page of text and charts


def find_browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    sys.exit(f"report_screenshot: no headless Chromium found (looked for {', '.join(BROWSERS)}); on Debian: apt-get install chromium-headless-shell")


def report_file(target: Path, scratch: Path) -> Path:
    if target.is_file():
        return target
    sys.path.insert(0, str(REPO))
    from tlstudio.core.report.html import write_report

    return write_report(target, scratch / "report.html")


def screenshot(browser: str, page: Path, png: Path, width: int, height: int, scratch: Path) -> None:
    command = [
        browser,
        "--headless",
        "--disable-gpu",
        "--hide-scrollbars",
        "--default-background-color=ffffffff",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={scratch / 'profile'}",
        f"--window-size={width},{height}",
        f"--screenshot={png}",
        page.resolve().as_uri(),
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.insert(1, "--no-sandbox")  # Chromium refuses to start as root with its sandbox
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0 or not png.is_file():
        sys.exit(f"report_screenshot: {Path(browser).name} failed (exit {result.returncode}): {result.stderr.strip()[-500:]}")


def shrink(png: Path) -> None:
    from PIL import Image

    with Image.open(png) as image:
        small = image.convert("RGB").quantize(PALETTE_COLOURS, method=Image.Quantize.MEDIANCUT)
    small.save(png, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", type=Path, help="a report.html, or a run folder to write one from")
    parser.add_argument("--out", type=Path, default=REPO / "resources" / "screenshots" / "report.png")
    parser.add_argument("--size", default="1150x1800", help="browser window WIDTHxHEIGHT in pixels; the picture is the top of the page")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    browser = find_browser()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tlstudio-report-shot-") as tmp:
        scratch = Path(tmp)
        raw = scratch / "shot.png"
        screenshot(browser, report_file(args.target, scratch), raw, width, height, scratch)
        shrink(raw)
        shutil.move(raw, args.out)
    print(f"{args.out} ({args.out.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
