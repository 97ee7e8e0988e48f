"""Sphinx extension: formulas pre-rendered to HTML by KaTeX at build time.

Each ``:math:`` role and ``.. math::`` block is turned into KaTeX's HTML (with MathML for
screen readers) by one ``node`` process per build process, so the pages need no JavaScript to
show a formula, work offline and from ``file://``, and a formula KaTeX cannot parse fails the
build instead of showing raw TeX. KaTeX comes from npm (``docs/package.json``; ``make docs``
runs ``npm ci``); its stylesheet and fonts are copied into ``_static/katex``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

HERE = Path(__file__).resolve().parent
KATEX = HERE.parent / "node_modules" / "katex"
SCRIPT = HERE / "katex_render.js"


class _Renderer:
    """A ``node`` process that renders TeX, one per OS process (parallel builds fork)."""

    def __init__(self) -> None:
        self._pid = -1
        self._process: subprocess.Popen[str] | None = None
        self._cache: dict[tuple[str, bool], str] = {}

    def render(self, tex: str, display: bool) -> str:
        key = (tex, display)
        if key not in self._cache:
            self._cache[key] = self._ask(tex, display)
        return self._cache[key]

    def _ask(self, tex: str, display: bool) -> str:
        if self._process is None or self._pid != os.getpid():
            node = shutil.which("node")
            if node is None:
                raise ExtensionError("the docs need node to pre-render formulas with KaTeX")
            self._process = subprocess.Popen(
                [node, str(SCRIPT), str(KATEX)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                encoding="utf-8",
            )
            self._pid = os.getpid()
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps({"tex": tex, "display": display}) + "\n")
        self._process.stdin.flush()
        answer = json.loads(self._process.stdout.readline())
        if "error" in answer:
            raise ExtensionError(f"KaTeX cannot render {tex!r}: {answer['error']}")
        return str(answer["html"])

    def close(self) -> None:
        if self._process is not None and self._pid == os.getpid():
            assert self._process.stdin is not None
            self._process.stdin.close()
            self._process.wait(timeout=30)
        self._process = None


RENDERER = _Renderer()


def _display_parts(text: str) -> list[str]:
    r"""The equations of a math block: blank-line separated; ``\\`` rows are aligned."""
    parts = [part.strip() for part in text.split("\n\n") if part.strip()]
    return [
        rf"\begin{{aligned}}{part}\end{{aligned}}" if "\\\\" in part else part for part in parts
    ]


def visit_math(self: Any, node: nodes.math) -> None:
    """An inline formula as KaTeX's HTML."""
    html = RENDERER.render(node.astext(), display=False)
    self.body.append(f'<span class="math notranslate">{html}</span>')
    raise nodes.SkipNode


def visit_math_block(self: Any, node: nodes.math_block) -> None:
    """A displayed formula (one or more equations) as KaTeX's HTML."""
    self.body.append(self.starttag(node, "div", CLASS="math notranslate"))
    for part in _display_parts(node.astext()):
        self.body.append(RENDERER.render(part, display=True))
    self.body.append("</div>\n")
    raise nodes.SkipNode


def _check_katex(app: Sphinx) -> None:
    if app.builder.format != "html":
        return
    if not (KATEX / "dist" / "katex.min.css").is_file():
        raise ExtensionError(
            f"KaTeX is not installed in {KATEX.parent}: run `make docs` (or `npm ci --prefix docs`)"
        )


def _copy_assets(app: Sphinx, exception: Exception | None) -> None:
    RENDERER.close()
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / "katex"
    shutil.copytree(KATEX / "dist" / "fonts", target / "fonts", dirs_exist_ok=True)
    shutil.copy2(KATEX / "dist" / "katex.min.css", target / "katex.min.css")


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the renderer and make it the HTML builders' math renderer."""
    app.add_html_math_renderer("katex_prerender", (visit_math, None), (visit_math_block, None))
    app.config.html_math_renderer = "katex_prerender"
    app.add_css_file("katex/katex.min.css")
    app.connect("builder-inited", _check_katex)
    app.connect("build-finished", _copy_assets)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
