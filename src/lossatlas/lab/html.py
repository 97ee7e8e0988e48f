"""``report.html``: the whole comparison on one self-contained page.

The page holds the verdict, the table, the metrics plot and every loss curve, the data
description and the config. Images are embedded (PNG as ``data:`` URIs, SVG inline), the style
sheet is inline, and there is no script at all, so the file opens offline, from an e-mail or a
CI artifact, exactly as it was written.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Figure", "Page", "Table", "comparison_page", "embed_image", "render_page", "write_page"]

_STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328;
       max-width: 1200px; margin: 2em auto; padding: 0 1.2em; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { font-size: 1.25em; margin-top: 1.8em;
     border-bottom: 1px solid #d0d7de; padding-bottom: .2em; }
.lead { color: #59636e; margin-top: 0; }
.verdict { background: #f6f8fa; border-left: 4px solid #1a7f37; padding: .6em 1em; }
.verdict p { margin: .3em 0; }
table { border-collapse: collapse; margin: 1em 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d0d7de; padding: .3em .7em; text-align: right; }
th:first-child, td:first-child, .text { text-align: left; }
td:not(.text) { white-space: nowrap; }
thead th { background: #f6f8fa; }
td.best { font-weight: 600; } td.winner { font-weight: 700; color: #1a7f37; }
figure { margin: 1.2em 0; } figure img, figure svg { max-width: 100%; height: auto; }
figcaption { color: #59636e; font-size: .9em; }
.curves { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr));
          gap: .5em 1.5em; }
pre { background: #f6f8fa; padding: .8em; overflow-x: auto; font-size: .85em; }
ul.notes li { margin: .2em 0; }
"""


@dataclass
class Table:
    """A table: a header, rows of cell texts, and how to mark cells.

    Attributes:
        header: Column titles.
        rows: Cell texts, one list per row.
        marks: ``(row, column)`` -> ``"best"`` or ``"winner"`` (bold; bold green with a star).
        text_columns: Columns aligned left (names, settings).
    """

    header: list[str]
    rows: list[list[str]]
    marks: dict[tuple[int, int], str] = field(default_factory=dict)
    text_columns: tuple[int, ...] = (0,)


@dataclass
class Figure:
    """An image file to embed, with its caption."""

    path: Path
    caption: str


@dataclass
class Page:
    """What ``report.html`` shows, top to bottom.

    Attributes:
        title: The page title (``lossatlas compare: regression-outliers``).
        lead: One line under the title (the task).
        verdict: Paragraphs of the verdict, first thing a reader sees.
        table: The results table.
        figures: The metrics plot first, then every loss curve.
        data: One line per seed describing its data (or one line for all).
        notes: Skipped candidates, diverged runs, data warnings.
        config: The settings, shown as JSON.
        table_note: A line under the table (what the numbers are, what the marks mean).
    """

    title: str
    lead: str
    verdict: list[str]
    table: Table
    figures: list[Figure] = field(default_factory=list)
    data: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    config: Mapping[str, Any] = field(default_factory=dict)
    table_note: str = ""


def embed_image(path: str | Path, alt: str) -> str:
    """An ``<img>`` with the PNG inline as a ``data:`` URI, or the SVG's own markup.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: For a file that is neither PNG nor SVG.
    """
    path = Path(path)
    data = path.read_bytes()
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        encoded = base64.b64encode(data).decode("ascii")
        return f'<img src="data:image/png;base64,{encoded}" alt="{html.escape(alt)}">'
    text = data.decode("utf-8", errors="replace")
    start = text.find("<svg")
    if path.suffix.lower() == ".svg" and start >= 0:
        # drop the XML prolog and DOCTYPE: inline SVG is part of the HTML document
        svg = text[start:]
        return re.sub(r"<svg\b", f'<svg role="img" aria-label="{html.escape(alt)}"', svg, count=1)
    raise ValueError(f"{str(path)!r} is neither a PNG nor an SVG image")


def _table(table: Table) -> str:
    head = "".join(
        f'<th class="text">{html.escape(h)}</th>'
        if j in table.text_columns
        else f"<th>{html.escape(h)}</th>"
        for j, h in enumerate(table.header)
    )
    body = []
    for i, row in enumerate(table.rows):
        cells = []
        for j, text in enumerate(row):
            classes = []
            mark = table.marks.get((i, j))
            if mark:
                classes.append(mark)
            if j in table.text_columns:
                classes.append("text")
            shown = html.escape(text) + (" ★" if mark == "winner" else "")
            attr = f' class="{" ".join(classes)}"' if classes else ""
            tag = "th" if j == 0 else "td"
            cells.append(f"<{tag}{attr}>{shown}</{tag}>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_page(page: Page) -> str:
    """The HTML text of ``page`` (every image embedded; no script).

    Example:
        >>> from lossatlas.lab.html import Page, Table, render_page
        >>> text = render_page(Page("t", "a task", ["huber wins"], Table(["loss"], [["huber"]])))
        >>> "<script" in text, 'class="verdict"' in text, text.count("<tr>")
        (False, True, 2)
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(page.title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(page.title)}</h1>",
        f'<p class="lead">{html.escape(page.lead)}</p>',
        '<section class="verdict" id="verdict">',
        *(f"<p>{html.escape(line)}</p>" for line in page.verdict),
        "</section>",
        "<h2>Results</h2>",
        _table(page.table),
    ]
    if page.table_note:
        parts.append(f'<p class="lead">{html.escape(page.table_note)}</p>')
    if page.figures:
        first, *rest = page.figures
        parts += ["<h2>Metrics</h2>", _figure(first)]
        if rest:
            parts += ["<h2>Training loss</h2>", '<div class="curves">']
            parts += [_figure(f) for f in rest]
            parts.append("</div>")
    if page.data:
        parts += ["<h2>Data</h2>", "<ul>"]
        parts += [f"<li>{html.escape(line)}</li>" for line in page.data]
        parts.append("</ul>")
    if page.notes:
        parts += ["<h2>Notes</h2>", '<ul class="notes">']
        parts += [f"<li>{html.escape(line)}</li>" for line in page.notes]
        parts.append("</ul>")
    if page.config:
        config = json.dumps(page.config, indent=2, ensure_ascii=False, default=str)
        parts += ["<h2>Config</h2>", f"<pre>{html.escape(config)}</pre>"]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _figure(figure: Figure) -> str:
    image = embed_image(figure.path, figure.caption)
    return f"<figure>{image}<figcaption>{html.escape(figure.caption)}</figcaption></figure>"


def write_page(page: Page, path: str | Path) -> Path:
    """Render ``page`` to ``path`` (written whole: a temporary file renamed into place)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render_page(page), encoding="utf-8")
    tmp.replace(path)
    return path


def comparison_page(comparison: Any, out_dir: str | Path, images: Mapping[str, str]) -> Page:
    """The :class:`Page` of a finished comparison whose PNGs ``images`` are under ``out_dir``.

    The cells are :mod:`lossatlas.lab.report`'s own (the same as ``report.md``'s).
    """
    from lossatlas.lab import report as rp

    out_dir = Path(out_dir)
    task, config = comparison.task, comparison.config
    ds = rp.decisions(comparison)
    primary = ds[0]
    header = ["loss", "catalog loss", "setting"]
    header += [f"{m.label} {'↑' if m.higher_is_better else '↓'}" for m in task.metrics]
    header += [f"vs best ({task.primary.label})", "wins", "p (Holm)"]
    tables = {m.key: comparison.table(m.key) for m in task.metrics}
    by_key = {c.key: c for c in comparison.candidates}
    order = rp._ranked(comparison, primary)
    rows, marks = [], {}
    for i, key in enumerate(order):
        cand = by_key[key]
        loss = " = ".join([cand.loss, *(m.loss for m in comparison.merged.get(key, []))])
        row = [rp.row_label(comparison, key), loss, cand.setting]
        for j, (metric, decision) in enumerate(zip(task.metrics, ds, strict=True)):
            row.append(rp._mean_std(tables[metric.key][key]))
            if decision.winner == key:
                marks[(i, 3 + j)] = "winner"
            elif key in decision.top_group and len(decision.top_group) > 1 and decision.pairs:
                marks[(i, 3 + j)] = "best"
        row += list(rp._versus(primary, key))
        rows.append(row)
    notes = [f"warning: {w.text}" for w in rp.below_chance(comparison)]
    notes += [f"skipped {s['candidate']} ({s['loss']}): {s['reason']}" for s in comparison.skipped]
    notes += list(comparison.notes)
    data = [f"seed {d['seed']}: {d.get('description', '')}" for d in comparison.data[:1]]
    data += [
        f"seed {d['seed']}: train {d.get('train')}, validation {d.get('val')}, test {d.get('test')}"
        for d in comparison.data
    ]
    if comparison.describe:
        data[:0] = list(comparison.describe.get("lines", []))
    figures = []
    if "metrics" in images:
        figures.append(
            Figure(out_dir / images["metrics"], "Every metric, every loss (see the table)")
        )
    figures += [
        Figure(out_dir / images[key], f"{key}: training loss per epoch")
        for key in order
        if key in images
    ]
    return Page(
        title=f"lossatlas compare: {task.name}",
        lead=f"{task.description}. {len(config['seeds'])} seeds x {config['epochs']} epochs, "
        f"batch {config['batch_size']}, {config['optimizer']}, device {config['device']}"
        + (", smoke run (--quick)" if config.get("quick") else "")
        + ".",
        verdict=[f"Verdict. {rp.headline(comparison)}", *rp.verdict_lines(comparison)],
        table=Table(header, rows, marks, text_columns=(0, 1, 2)),
        table_note="Metrics on the test split, mean ± std over seeds. vs best: the paired "
        "difference from the best with its 95 % t interval; wins: seeds on which the loss beat "
        "the best; p (Holm): the exact sign-flip test against the best, Holm-corrected. "
        "★ a winner, bold the top group.",
        figures=figures,
        data=data,
        notes=notes,
        config=config,
    )
