"""Sphinx extension: the per-task and per-loss pages and the plots, generated from the catalog.

At ``builder-inited`` it writes ``tasks/*.rst``, ``losses/*.rst`` and ``_plots/*.png`` from
``lossatlas.catalog()`` (git ignores all three), so a loss gets its page, its plot and its row
in its tasks' tables by being declared, and a loss that leaves the catalog loses its page. A
plot is redrawn only when it is missing or older than the code that draws it.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.util import logging

import lossatlas as la
from lossatlas import docs, plot

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent.parent  # docs/


def _write(path: Path, text: str) -> None:
    """Write only on change, so an incremental build re-reads only what changed."""
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def _accepted(name: str):  # type: ignore[no-untyped-def]
    def accepted(option: str, value: float) -> bool:
        try:
            la.loss_curve(name, points=3, **{option: value})
        except (ValueError, TypeError):
            return False
        return True

    return accepted


def _caption(spec: la.LossSpec, params: dict[str, list[float]]) -> str:
    if spec.curve is not None:
        swept = ""
        if params:
            ((option, values),) = params.items()
            swept = f" for ``{option}`` = " + ", ".join(f"{v:g}" for v in values)
        return (
            f"The unreduced loss (left) and its gradient {plot._GRAD_OF[spec.curve]} (right) "
            f"against {plot._X_LABELS[spec.curve]}{swept}; other options at their defaults "
            f"(``la.plot_loss({spec.name!r})``)."
        )
    path = plot.loss_path(spec.name, points=3).label
    along = {
        "perfect": "along the straight path from the declared example inputs (t = 0) to a "
        "perfect prediction (t = 1)",
        "descent": "along a slice through the declared example inputs (s = 0) in the direction "
        "of steepest descent, the step as long as the inputs",
        "scale": "as the declared example's predictions grow with its scale s",
    }[path]
    return (
        "This loss takes more than one number per sample, so it is drawn "
        f"{along}: the mean loss (left) and its derivative along the path (right) "
        f"(``la.plot_loss_path({spec.name!r})``)."
    )


def _stale(target: Path, sources: list[Path]) -> bool:
    if not target.exists():
        return True
    built = target.stat().st_mtime
    return any(source.stat().st_mtime > built for source in sources)


def _draw(spec: la.LossSpec, target: Path, params: dict[str, list[float]]) -> None:
    if spec.curve is not None:
        fig = la.plot_loss(spec.name, params=params or None, points=201)
    else:
        fig = la.plot_loss_path(spec.name, points=41)
    fig.savefig(target, dpi=80)
    import matplotlib.pyplot as plt

    plt.close(fig)


def _gallery(specs: list[la.LossSpec]) -> str:
    out = [
        ".. _gallery:",
        "",
        "Every loss",
        "==========",
        "",
        f"All {len(specs)} losses of the catalog (``la.catalog()``, ``lossatlas list``), each "
        "with its loss and gradient; click one for its page. By task: :doc:`/tasks/index`.",
        "",
        ".. container:: gallery",
        "",
    ]
    for spec in specs:
        out += [
            f"   .. figure:: /_plots/{spec.name}.png",
            f"      :alt: {spec.name}",
            f"      :target: {spec.name}.html",
            "",
            f"      :doc:`{spec.name} <{spec.name}>`",
            "",
        ]
    out += [".. toctree::", "   :hidden:", ""]
    out += [f"   {spec.name}" for spec in specs]
    return "\n".join(out) + "\n"


def _tasks_index() -> str:
    out = ["Losses by task", "==============", ""]
    out += [
        "The catalog's tasks; a loss carries every task it serves, so it can appear on several "
        "pages. Which one to choose: :doc:`/guides/which-loss`.",
        "",
    ]
    rows = [
        [f":doc:`{title} <{task}>`", f"``{task}``", str(len(la.for_task(task)))]
        for task, title in la.TASKS.items()
    ]
    out += [docs._table(["task", "key", "losses"], rows, "4 2 1")]
    out += ["", ".. toctree::", "   :hidden:", ""]
    out += [f"   {task}" for task in la.TASKS]
    return "\n".join(out) + "\n"


def generate(app: Sphinx) -> None:
    """Write the task and loss pages and draw the stale plots (``builder-inited``)."""
    specs = [spec for spec in la.catalog() if not spec.custom]
    for folder in ("losses", "tasks", "_plots"):
        (HERE / folder).mkdir(exist_ok=True)
    drawing_code = [Path(plot.__file__)]
    wanted: dict[str, set[str]] = {"losses": {"index.rst"}, "tasks": {"index.rst"}, "_plots": set()}
    drawn = 0
    for spec in specs:
        target = HERE / "_plots" / f"{spec.name}.png"
        params = docs.sweep(spec, _accepted(spec.name)) if spec.curve is not None else {}
        source = Path(inspect.getsourcefile(spec.function) or plot.__file__)
        if _stale(target, [source, *drawing_code]):
            _draw(spec, target, params)
            drawn += 1
        page = docs.loss_page(spec, f"/_plots/{spec.name}.png", _caption(spec, params))
        _write(HERE / "losses" / f"{spec.name}.rst", page)
        wanted["losses"].add(f"{spec.name}.rst")
        wanted["_plots"].add(f"{spec.name}.png")
    _write(HERE / "losses" / "index.rst", _gallery(specs))
    for task in la.TASKS:
        _write(HERE / "tasks" / f"{task}.rst", docs.task_page(task))
        wanted["tasks"].add(f"{task}.rst")
    _write(HERE / "tasks" / "index.rst", _tasks_index())
    for folder, names in wanted.items():
        for stale in sorted(set(os.listdir(HERE / folder)) - names):
            (HERE / folder / stale).unlink()
    logger.info(
        f"lossatlas: {len(specs)} loss pages, {len(la.TASKS)} task pages, {drawn} plots drawn"
    )


def setup(app: Sphinx) -> dict[str, Any]:
    """Generate the pages before Sphinx reads the sources."""
    app.connect("builder-inited", generate)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
