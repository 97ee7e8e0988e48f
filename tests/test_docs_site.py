"""The documentation site (``make docs``): a page and a plot per catalog entry, no broken link,
formulas rendered and images loaded in a real browser.

The site is the one ``make docs`` built when ``LOSSATLAS_DOCS_HTML`` names its directory (CI
builds it once, then runs the suite); otherwise it is built here once per session, from a copy
of ``docs/`` so the checkout is left alone (that needs the ``docs`` extra and KaTeX from npm:
``make docs`` installs both). Headless Chromium (Debian's ``chromium``; ``.ci/run`` installs
it) renders four pages -- the index, a task page, a loss page with a formula and a plot, the
gallery of every plot -- and takes screenshots (``LOSSATLAS_SCREENSHOTS=DIR`` keeps them).
"""

from __future__ import annotations

import contextlib
import fcntl
import html
import importlib.util
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

import lossatlas as la

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.slow


def _build(out: Path) -> None:
    """``sphinx-build -b html -W`` of a copy of docs/ (generated pages and plots land in it)."""
    source = out.parent / "docs-source"
    shutil.rmtree(source, ignore_errors=True)
    shutil.copytree(
        DOCS, source, ignore=shutil.ignore_patterns("_build", "node_modules", "losses", "tasks")
    )
    (source / "node_modules").symlink_to(DOCS / "node_modules")
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q", *(source, out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    assert done.returncode == 0, f"sphinx-build failed:\n{done.stderr[-5000:]}"


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The built site's directory (``index.html`` at its root)."""
    built = os.environ.get("LOSSATLAS_DOCS_HTML")
    if built:
        path = Path(built).resolve()
        assert (path / "index.html").is_file(), (
            f"LOSSATLAS_DOCS_HTML={built} holds no built site: run `make docs` first"
        )
        return path
    missing = [m for m in ("sphinx", "furo", "myst_parser") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"building the docs needs {', '.join(missing)}: pip install 'lossatlas[docs]'")
    if not (DOCS / "node_modules" / "katex" / "package.json").is_file():
        pytest.skip("KaTeX is not installed for the docs build: npm ci --prefix docs (make docs)")
    if shutil.which("node") is None:
        pytest.skip("the docs build needs node (KaTeX pre-renders the formulas)")
    # one build per session, shared by the xdist workers (the first one builds, the others wait)
    shared = tmp_path_factory.getbasetemp().parent
    out = shared / "docs-site"
    with (shared / "docs-site.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "index.html").is_file():
            _build(out)
    return out


class _Links(HTMLParser):
    """The links (``href``/``src``) and the element ids of one HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if key == "id" and value:
                self.ids.add(value)
            if key in ("href", "src") and value:
                self.links.append(value)


def _parse(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def test_every_catalog_entry_has_a_page_and_a_plot(site):
    declared = {spec.name for spec in la.catalog() if not spec.custom}
    pages = {page.stem for page in (site / "losses").glob("*.html")} - {"index"}
    assert pages == declared, (
        f"pages without a declaration: {sorted(pages - declared)}; "
        f"declarations without a page: {sorted(declared - pages)}"
    )
    for name in sorted(declared):
        page = site / "losses" / f"{name}.html"
        images = [link for link in _parse(page).links if link.endswith(".png")]
        assert images, f"{name}: its page shows no plot"
        for image in images:
            data = (page.parent / image).resolve().read_bytes()
            assert data.startswith(b"\x89PNG\r\n\x1a\n"), f"{name}: {image} is not a PNG"
            width, height = struct.unpack(">II", data[16:24])
            assert width >= 400 and height >= 150, f"{name}: {image} is {width}x{height}"
        text = page.read_text(encoding="utf-8")
        assert f'id="lossatlas.{name}"' in text, f"{name}: its page has no API entry"


def test_every_task_has_a_page_listing_its_losses(site):
    for task in la.TASKS:
        page = site / "tasks" / f"{task}.html"
        assert page.is_file(), f"no page for the task {task!r}"
        links = {Path(urlsplit(link).path).stem for link in _parse(page).links}
        missing = {spec.name for spec in la.for_task(task)} - links
        assert not missing, f"the {task} page does not link {sorted(missing)}"


def test_no_internal_link_is_broken(site):
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > len(la.catalog()), "the site has fewer pages than the catalog"
    parsed = {page.resolve(): _parse(page) for page in pages}
    broken: list[str] = []
    for page, found in parsed.items():
        for link in found.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("mailto:", "javascript:")):
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(site.resolve())}: {link}")
            elif parts.fragment and target.suffix == ".html":
                ids = parsed[target].ids if target in parsed else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{page.relative_to(site.resolve())}: {link} (no such anchor)")
    # the stylesheets' own references (KaTeX's fonts) are part of the offline site too
    for sheet in site.glob("_static/**/*.css"):
        for ref in re.findall(r"url\(([^)]+)\)", sheet.read_text(encoding="utf-8")):
            ref = ref.strip("'\"")
            if ref.startswith(("data:", "http:", "https:", "#")):
                continue
            if not (sheet.parent / urlsplit(ref).path).exists():
                broken.append(f"{sheet.relative_to(site)}: url({ref})")
    assert not broken, f"{len(broken)} broken internal links:\n" + "\n".join(broken[:50])


def test_the_search_box_works_offline(site):
    assert (site / "search.html").is_file()
    index = (site / "searchindex.js").read_text(encoding="utf-8")
    assert "focal_loss" in index and "dice_loss" in index


# ------------------------------------------------------------------------------- the browser

PROBE = """
<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  document.body.setAttribute("data-probe", JSON.stringify({
    images: images.map((i) => [i.getAttribute("src"), i.complete ? i.naturalWidth : 0]),
    text: document.body.innerText,
    formulas: document.querySelectorAll(".katex").length,
    katexFont: document.fonts.check("16px KaTeX_Main"),
  }));
});
</script>
"""


def _chromium(profile: Path, url: str, *options: str) -> str:
    """Run headless Chromium once on ``url``; its stdout. Its process group is killed after."""
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
        f"--user-data-dir={profile}",
        *options,
        url,
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = process.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
    assert process.returncode == 0, err[-2000:]
    return out


def _probe(profile: Path, page: Path) -> dict:
    """What the probe finds in ``page`` rendered from a copy beside it (relative links hold)."""
    copy = page.with_name(f"_probe-{page.name}")
    copy.write_text(page.read_text(encoding="utf-8") + PROBE, encoding="utf-8")
    try:
        dom = _chromium(profile, copy.as_uri(), "--virtual-time-budget=10000", "--dump-dom")
    finally:
        copy.unlink()
    found = re.search(r'data-probe="([^"]*)"', dom)
    assert found, f"the probe did not run on {page.name}: {dom[:500]}"
    return json.loads(html.unescape(found.group(1)))


PAGES = {
    "index": ("index.html", False),
    "task": ("tasks/regression.html", True),
    "loss": ("losses/huber_loss.html", True),
    "gallery": ("losses/index.html", False),
}


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium is not on PATH (apt-get install chromium; .ci/run does)",
)
@pytest.mark.parametrize("key", list(PAGES))
def test_page_renders_in_chromium(site, key, tmp_path):
    path, has_formulas = PAGES[key]
    page = site / path
    found = _probe(tmp_path / "profile", page)
    # formulas are KaTeX's HTML, not TeX source
    for raw in (r"\frac", r"\ell", r"\begin", r"\operatorname", "$$"):
        assert raw not in found["text"], f"{path}: raw TeX {raw!r} in the page text"
    if has_formulas:
        assert found["formulas"] > 0, f"{path}: no rendered formula"
        assert found["katexFont"], f"{path}: KaTeX's fonts did not load"
    not_loaded = [src for src, width in found["images"] if width <= 0]
    assert not not_loaded, f"{path}: images that did not load: {not_loaded}"
    if key == "loss":
        assert any("huber_loss" in src for src, _ in found["images"]), "the loss page has no plot"
    if key == "gallery":
        assert len(found["images"]) == len([s for s in la.catalog() if not s.custom])
    shot = tmp_path / f"docs-{key}.png"
    _chromium(
        tmp_path / "profile",
        page.as_uri(),
        "--window-size=1280,1600",
        "--virtual-time-budget=10000",
        f"--screenshot={shot}",
    )
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert struct.unpack(">II", data[16:24]) == (1280, 1600)
    keep = os.environ.get("LOSSATLAS_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)
