"""Open a report in headless Chromium and save a screenshot (and, on request, an A4 PDF).

    python benchmarks/report_screenshot.py               # the sample -> docs/report-sample.png
    python benchmarks/report_screenshot.py --report r.html --png r.png --pdf r.pdf
    python benchmarks/report_screenshot.py --width 390   # as on a phone

Without --report, the bundled sample is tagged with the shipped model and reported by date and
service (no quotes), which is the screenshot in the README. Needs a Chromium binary (Debian:
``apt-get install chromium``) and Pillow (installed with matplotlib) to trim the page.
Chromium runs with --no-sandbox, which containers need; only ever point it at local files.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SAMPLE = ROOT / "training_data" / "sample_feedback.csv"


def sample_report(folder: Path) -> Path:
    """Tag the sample with the shipped model and write its report into ``folder``."""
    from classifier.report import build_report
    from classifier.tagging import tag_file

    tagged = folder / "sample_feedback.tagged.csv"
    tag_file(str(SAMPLE), str(tagged))
    report = folder / "report.html"
    build_report(
        tagged,
        report,
        date_column="submitted",
        group_column="service",
        title="Client feedback: the bundled sample",
    )
    return report


def find_chromium(explicit: str | None) -> str:
    for candidate in (explicit, "chromium", "chromium-browser", "google-chrome"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    sys.exit("no Chromium found: apt-get install chromium, or pass --chromium PATH")


def chromium(binary: str, *arguments: str) -> None:
    command = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-extensions",
        *arguments,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        sys.exit(f"chromium failed ({done.returncode}): {done.stderr[-2000:]}")


def trim(png: Path, max_height: int | None) -> None:
    """Cut the blank canvas below the page (Chromium shoots the whole window) and cap height."""
    from PIL import Image, ImageChops

    with Image.open(png) as image:
        image = image.convert("RGB")
        background = Image.new("RGB", image.size, (255, 255, 255))
        box = ImageChops.difference(image, background).getbbox()
        bottom = min(image.height, (box[3] if box else image.height) + 24)
        if max_height:
            bottom = min(bottom, max_height)
        # 128 colours keep the anti-aliased charts intact at a third of the file size.
        image = image.crop((0, 0, image.width, bottom)).quantize(colors=128)
        image.save(png, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", type=Path, help="HTML report (default: the sample's)")
    parser.add_argument("--png", type=Path, default=ROOT / "docs" / "report-sample.png")
    parser.add_argument("--pdf", type=Path, help="Also print the report to this A4 PDF.")
    parser.add_argument("--width", type=int, default=900, help="Window width in CSS pixels.")
    parser.add_argument("--height", type=int, default=8000, help="Window height (then trimmed).")
    parser.add_argument("--max-height", type=int, help="Crop the screenshot to this height.")
    parser.add_argument("--chromium", help="Chromium binary (default: found on PATH).")
    args = parser.parse_args()

    binary = find_chromium(args.chromium)
    with tempfile.TemporaryDirectory() as folder:
        report = args.report or sample_report(Path(folder))
        url = report.resolve().as_uri()
        args.png.parent.mkdir(parents=True, exist_ok=True)
        chromium(
            binary,
            f"--window-size={args.width},{args.height}",
            f"--screenshot={args.png.resolve()}",
            url,
        )
        trim(args.png, args.max_height)
        print(f"{args.png} ({args.png.stat().st_size / 1024:,.0f} KB)")
        if args.pdf:
            chromium(binary, "--no-pdf-header-footer", f"--print-to-pdf={args.pdf.resolve()}", url)
            print(f"{args.pdf} ({args.pdf.stat().st_size / 1024:,.0f} KB)")


if __name__ == "__main__":
    main()
