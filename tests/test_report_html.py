"""report.html as a reviewer sees it in Chromium at 1400 px (tests/chromium_page.py drives a headless Chromium over
the DevTools pipe): the verdict table on the first screen, nothing wider than the page, every figure loaded and
shown at its own size, no console message; and the committed screenshots the README shows."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

from chromium_page import HEIGHT, MEASURE, WIDTH, Page, chromium_binary

from harness.report.build import build

ROOT = Path(__file__).resolve().parent.parent
REVIEWER_DIRS = (ROOT / "tests/data/synthetic-gpu-results", ROOT / "benchmarks/results/bench-all-cpu-2026-11-29")
SCREENSHOTS = (ROOT / "docs/report-first-screen.png", ROOT / "docs/report-fig3.png")


@pytest.fixture(scope="module")
def chromium():
    binary = chromium_binary()
    if binary is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    return binary


@pytest.mark.parametrize("dirs", [REVIEWER_DIRS, (ROOT / "tests/data/results-cpu-2026-11-24",)],
                         ids=["synthetic-gpu-beside-cpu", "cpu-records"])
def test_what_a_reader_sees_at_1400_px(chromium, dirs, tmp_path):
    report = build(list(dirs), tmp_path / "report")
    with Page(chromium) as page:
        page.open(report.html.resolve().as_uri())
        seen = page.evaluate(MEASURE)
        console = page.console()
    assert seen["innerWidth"] == WIDTH
    # the verdict table starts on the first screen, with its header and first claim visible there
    assert seen["verdictTop"] is not None and seen["verdictTop"] < HEIGHT
    assert seen["verdictRows"][1] < HEIGHT
    # nothing wider than the page: no horizontal scrolling, no element past either edge
    assert seen["scrollWidth"] <= WIDTH and seen["wide"] == []
    # every figure loaded, and shown at (nearly) its own size: its text as large as it was drawn
    images = seen["images"]
    assert len(images) == len(report.figures) > 0
    for image in images:
        assert image["complete"] and image["natural"] > 0, image["alt"]
        assert image["shown"] >= 0.95 * image["natural"], image["alt"]
    # the page has no script: any console or log message (a blocked resource, an error) is a failure
    assert console == []


def test_screenshots_for_the_readme_are_committed():
    from PIL import Image

    first, fig3 = SCREENSHOTS
    with Image.open(first) as im:
        assert im.format == "PNG" and im.size == (WIDTH, HEIGHT)
    with Image.open(fig3) as im:
        assert im.format == "PNG" and im.size[0] >= 1000 and im.size[1] >= 800
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The report", 1)[1].split("\n## ", 1)[0]
    assert all(f"({path.relative_to(ROOT)})" in section for path in SCREENSHOTS)
    assert "python tests/chromium_page.py" in (ROOT / "docs/report.md").read_text()
