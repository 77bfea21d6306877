"""The HTML report in a real headless browser (Debian's `chromium`): it renders, its
charts are laid out, and a screenshot is saved in the test's tmp dir for a human to see.

Without chromium the test is skipped loudly, or fails when OMNICASCADE_REQUIRE_BROWSER=1
(CI sets it, so a missing browser can never pass silently)."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import warnings
from pathlib import Path

import pytest

from omnicascade.db.session import session_scope
from omnicascade.reports.build import build_report
from omnicascade.reports.html import write_html
from tests.helpers.reports import realistic

CHARTS = ("chart-rates", "chart-funnel", "chart-timeline", "chart-attribution")


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    reason = ("CHROMIUM IS NOT INSTALLED: the HTML report was NOT checked in a browser "
              "(apt-get install chromium)")
    if os.environ.get("OMNICASCADE_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + " and OMNICASCADE_REQUIRE_BROWSER=1")
    warnings.warn(reason, stacklevel=2)
    pytest.skip(reason)


def run_browser(binary: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", head[16:24])


def test_html_report_renders_with_its_charts_in_chromium(settings, tmp_path):
    binary = chromium()
    run_id = realistic(settings, tmp_path / "campaign")
    with session_scope(settings.db_url) as s:
        report = build_report(run_id, session=s, settings=settings)
    page = tmp_path / "report.html"
    write_html(report, page)
    source = page.read_text()
    # one self-contained file: nothing fetched from anywhere
    assert not re.search(r"<(script|img|link)[^>]+(src|href)=", source)
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", source)

    dom = run_browser(binary, tmp_path, "--virtual-time-budget=5000", "--dump-dom",
                      page.as_uri()).stdout
    # the page's own script ran after layout and found every chart with a real size
    assert f'data-charts-rendered="{len(CHARTS)}"' in dom, dom[:2000]
    for chart in CHARTS:
        svg = re.search(rf'<svg id="{chart}"[^>]*>(.*?)</svg>', dom, re.DOTALL)
        assert svg, f"{chart} missing from the rendered page"
        assert 'data-rendered="yes"' in svg.group(0)[:600]
        assert re.search(r"<(rect|polyline|circle)", svg.group(1)), f"{chart} is empty"
    timeline = re.search(r'<svg id="chart-timeline".*?</svg>', dom, re.DOTALL).group(0)
    assert sorted(re.findall(r'class="series" data-variant="([^"]+)"', timeline)) == \
        ["control", "holdout", "sms_first"]
    assert "Funnel" in dom and "What the numbers say" in dom
    assert report["experiment"]["comparisons"][0]["text"] in dom.replace("&amp;", "&")

    shot = tmp_path / "report.png"
    run_browser(binary, tmp_path, "--hide-scrollbars", f"--screenshot={shot}",
                "--window-size=1280,3000", page.as_uri())
    assert png_size(shot) == (1280, 3000)
    assert shot.stat().st_size > 50_000  # a blank page compresses to a few KB
    print(f"\nHTML report: {page}\nscreenshot:  {shot}")
