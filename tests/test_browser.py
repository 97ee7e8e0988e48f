"""compare's two pages in a real browser: report.html and the live TensorBoard view.

Headless Chromium (Debian's ``chromium``; ``.ci/run`` installs it) renders each page and takes
a screenshot. For ``report.html`` a copy of the page with a small probe script appended is
rendered with ``--dump-dom``: the probe writes into the DOM how many images the page has, how
many loaded, and the verdict's text, which the test compares with ``report.json``. TensorBoard's
charts live in shadow DOM, so for the live view the test reads the scalars back through
TensorBoard's HTTP data endpoints and compares them with what ``compare`` recorded.

Set ``LOSSATLAS_SCREENSHOTS=DIR`` to keep the screenshots (docs/img/report.png, shown in the
compare guide, comes from there).
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="headless Chromium is not on PATH (apt-get install chromium; .ci/run does)",
    ),
]

PROBE = """
<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  document.body.setAttribute("data-probe", JSON.stringify({
    images: images.length,
    loaded: images.filter((i) => i.complete && i.naturalWidth > 0).length,
    svgs: document.querySelectorAll("svg").length,
    verdict: Array.from(document.querySelectorAll("#verdict p")).map((p) => p.textContent),
    scripts: document.scripts.length,
  }));
});
</script>
"""


def chromium(profile: Path, url: str, *options: str, timeout: float = 120.0) -> str:
    """Run headless Chromium once on ``url``; its stdout. The whole process group is killed."""
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--mute-audio",
        f"--user-data-dir={profile}",
        *options,
        url,
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
    assert process.returncode == 0, err[-2000:]
    return out


def screenshot(profile: Path, url: str, path: Path, size: tuple[int, int], budget: int) -> None:
    chromium(
        profile,
        url,
        f"--window-size={size[0]},{size[1]}",
        f"--virtual-time-budget={budget}",
        f"--screenshot={path}",
    )
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert struct.unpack(">II", data[16:24]) == size
    keep = os.environ.get("LOSSATLAS_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)


def probe(profile: Path, page: Path, tmp_path: Path) -> dict:
    """Render a copy of ``page`` with the probe appended; what the probe found."""
    copy = tmp_path / f"probe-{page.name}"
    copy.write_text(page.read_text(encoding="utf-8") + PROBE, encoding="utf-8")
    dom = chromium(profile, copy.as_uri(), "--virtual-time-budget=5000", "--dump-dom")
    found = re.search(r'data-probe="([^"]*)"', dom)
    assert found, dom[:2000]
    return json.loads(html.unescape(found.group(1)))


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    """A small real comparison (two losses, two seeds, three epochs) written with TensorBoard."""
    out = tmp_path_factory.mktemp("browser") / "R"
    command = [
        sys.executable,
        "-m",
        "lossatlas",
        "compare",
        "--task",
        "regression-outliers",
        "--losses",
        "mse,huber",
        "--seeds",
        "2",
        "--epochs",
        "3",
        "--jobs",
        "1",
        "--out",
        str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_report_html_shows_the_verdict_and_every_image(comparison, tmp_path):
    report = json.loads((comparison / "report.json").read_text())
    page = comparison / "report.html"
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text.lower()
    assert not re.search(r"""(src|href)=["']https?://""", text)  # nothing from the internet
    screenshot(tmp_path, page.as_uri(), tmp_path / "report.png", (1200, 1600), 3000)
    found = probe(tmp_path, page, tmp_path)
    images = 1 + len(report["candidates"])  # the metrics plot and one curve per candidate
    assert report["files"]["html"] == "report.html"
    assert found["images"] + found["svgs"] == images
    assert found["loaded"] == found["images"]
    assert found["scripts"] == 1  # the probe's own
    # the page shows the verdict report.json holds: the headline, then each metric's
    assert found["verdict"] == [
        f"Verdict. {report['verdict']}",
        *(d["verdict"] for d in report["decisions"]),
    ]


def test_the_probe_sees_a_broken_image(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><body><section id="verdict"><p>v</p></section>'
        '<img src="data:image/png;base64,iVBORw0KGgoAAAA" alt="broken"></body></html>',
        encoding="utf-8",
    )
    found = probe(tmp_path, page, tmp_path)
    assert (found["images"], found["loaded"]) == (1, 0)


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def test_tensorboard_page_and_its_scalars_match_what_compare_wrote(comparison, tmp_path):
    from lossatlas.lab.tensorboard import serving

    report = json.loads((comparison / "report.json").read_text())
    task = report["task"]["name"]
    with serving(comparison / "tb") as server:
        runs = get_json(server.url + "data/runs")
        tags = get_json(server.url + "data/plugin/scalars/tags")
        for run in report["runs"]:
            name = f"{task}/{run['candidate']}/seed{run['seed']}"
            assert name in runs
            assert "train/loss/total" in tags[name]
            query = urllib.parse.urlencode({"run": name, "tag": "train/loss/total"})
            points = get_json(server.url + f"data/plugin/scalars/scalars?{query}")
            assert [step for _, step, _ in points] == list(range(1, len(run["epoch_loss"]) + 1))
            assert [v for _, _, v in points] == pytest.approx(run["epoch_loss"], rel=1e-6)
            for metric, value in run["metrics"].items():
                assert f"val/{metric}" in tags[name]
                query = urllib.parse.urlencode({"run": name, "tag": f"test/{metric}"})
                final = get_json(server.url + f"data/plugin/scalars/scalars?{query}")
                assert final[-1][2] == pytest.approx(value, rel=1e-6)
        screenshot(
            tmp_path,
            server.url + "#custom_scalars",
            tmp_path / "tensorboard.png",
            (1400, 900),
            20000,
        )
