"""What ``lossatlas compare`` and ``lossatlas plot`` do; ``lossatlas.cli`` only declares options.

Every user error becomes a ``click.ClickException`` whose message says what to fix.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import torch

from lossatlas.lab.data import DataError, load_csv
from lossatlas.lab.describe import own_data_task
from lossatlas.lab.tasks import Task, get_task

__all__ = ["DEFAULT_TASK", "compare_cli", "parse_params", "plot_cli"]

#: What ``lossatlas compare`` (and ``make demo``) runs without ``--task``: the task where the
#: choice of loss changes the result most plainly (MSE chases the outliers; robust losses don't).
DEFAULT_TASK = "regression-outliers"

#: The task a CSV target of each kind is compared on.
_TASK_FOR_KIND = {
    "binary": "binary-imbalanced",
    "multiclass": "multiclass-longtail",
    "regression": "regression-outliers",
}
_KIND_OF_TASK = {task: kind for kind, task in _TASK_FOR_KIND.items()}


def parse_params(items: Sequence[str]) -> dict[str, list[Any]]:
    """``["gamma=0,0.5,1", "alpha=0.25"]`` -> ``{"gamma": [0.0, 0.5, 1.0], "alpha": [0.25]}``.

    Values are numbers where they parse as numbers, ``True``/``False``/``None`` for those
    words, and strings otherwise.

    Raises:
        click.BadParameter: For an item without ``=`` or with no values.
    """
    params: dict[str, list[Any]] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name = name.strip()
        values = [v.strip() for v in raw.split(",") if v.strip()]
        if not sep or not name or not values:
            raise click.BadParameter(
                f"expected NAME=V1,V2,... (e.g. gamma=0,0.5,1,2,5), got {item!r}",
                param_hint="--param",
            )
        params[name] = [_value(v) for v in values]
    return params


def _value(text: str) -> Any:
    words = {"true": True, "false": False, "none": None}
    if text.lower() in words:
        return words[text.lower()]
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def plot_cli(names: Sequence[str], params: Sequence[str], output: Path | None) -> Path:
    """Draw ``names`` with the ``--param`` sweeps to ``output`` (default ``<first name>.png``)."""
    from lossatlas.plot import plot_loss

    sweep = parse_params(params)
    path = output or Path(f"{names[0]}.png")
    try:
        plot_loss(list(names), params=sweep, path=path)
    except KeyError as error:
        raise click.ClickException(str(error.args[0])) from None
    except (ValueError, TypeError, ImportError) as error:
        raise click.ClickException(str(error)) from None
    return path


def _device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise click.BadParameter(
            f"{name!r} is not a torch device (try cpu, cuda, cuda:1, mps)", param_hint="--device"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise click.BadParameter("CUDA is not available on this machine", param_hint="--device")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise click.BadParameter("MPS is not available on this machine", param_hint="--device")
    return device


def _resolve_task(
    task_name: str | None, data: Path | None, target: str | None, notes: list[str]
) -> tuple[Task, dict[str, Any] | None]:
    """The task and, with ``--data``, the description of the CSV file."""
    if data is None:
        if target is not None:
            raise click.UsageError("--target names a column of --data FILE.csv; give --data too")
        return get_task(task_name or DEFAULT_TASK), None
    if target is None:
        raise click.UsageError("--data needs --target COLUMN, the column to predict")
    if task_name is not None and task_name not in _KIND_OF_TASK:
        raise click.UsageError(
            f"--data works with the tabular tasks ({', '.join(_KIND_OF_TASK)}), not {task_name}"
        )
    kind = _KIND_OF_TASK.get(task_name) if task_name else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            table = load_csv(data, target, kind=kind)  # type: ignore[arg-type]
        except DataError as error:
            raise click.ClickException(str(error)) from None
    notes += [str(w.message) for w in caught]
    task, facts = own_data_task(get_task(_TASK_FOR_KIND[table.kind]), table)
    try:
        task.load(0)  # split errors (a class too small to split) before any training
    except DataError as error:
        raise click.ClickException(str(error)) from None
    return task, facts


def compare_cli(
    console: Any,
    *,
    task_name: str | None,
    data: Path | None,
    target: str | None,
    losses: str | None,
    seeds: int | None,
    epochs: int | None,
    device: str,
    quick: bool,
    out: Path,
) -> Path:
    """Run the comparison with a progress bar, print the table and verdicts, write the report."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from lossatlas.lab.compare import DEFAULT_SEEDS, QUICK_SEEDS, run_comparison
    from lossatlas.lab.report import (
        below_chance,
        heading,
        headline,
        rich_table,
        verdict_lines,
        write_report,
    )

    torch_device = _device(device)
    notes: list[str] = []
    task, facts = _resolve_task(task_name, data, target, notes)
    names = [n.strip() for n in losses.split(",") if n.strip()] if losses else None
    n_seeds = seeds if seeds is not None else (QUICK_SEEDS if quick else DEFAULT_SEEDS)
    for note in notes:
        console.print(f"[yellow]note:[/yellow] {note}", highlight=False)
    console.print(f"[bold]lossatlas compare[/bold] {task.name}: {task.description}")
    if facts is not None:
        for line in facts["lines"]:
            console.print(f"  {line}", highlight=False)
    if quick:
        console.print(
            f"[yellow]smoke run[/yellow] (--quick): {n_seeds} seeds of fully trained models; it "
            "checks that every loss runs and shows rough numbers, it is not a verdict",
            highlight=False,
        )
    columns = (
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("epochs"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        try:
            comparison = run_comparison(
                task,
                losses=names,
                seeds=n_seeds,
                epochs=epochs,
                device=torch_device,
                quick=quick,
                progress=progress,
            )
        except DataError as error:
            raise click.ClickException(str(error)) from None
        except ValueError as error:
            raise click.ClickException(str(error)) from None
    comparison.notes[:0] = notes
    comparison.describe = facts
    if not comparison.candidates:
        for skip in comparison.skipped:
            console.print(f"[yellow]skipped[/yellow] {skip['candidate']}: {skip['reason']}")
        raise click.ClickException(f"none of the losses could be compared on {task.name}")
    path = write_report(comparison, out)
    console.print(f"\n[bold]{heading(comparison)}[/bold]")
    console.print(rich_table(comparison))
    for line in verdict_lines(comparison):
        console.print(f"  {line}", highlight=False)
    console.print(f"\n[bold]Verdict:[/bold] {headline(comparison)}", highlight=False)
    for warning in below_chance(comparison):
        console.print(f"[red]warning:[/red] {warning.text}", highlight=False)
    for skip in comparison.skipped:
        console.print(
            f"[yellow]skipped[/yellow] {skip['candidate']} ({skip['loss']}): {skip['reason']}",
            highlight=False,
        )
    for note in comparison.notes[len(notes) :]:
        console.print(f"[yellow]note:[/yellow] {note}", highlight=False)
    console.print(
        f"\nReport: [bold]{path.resolve()}[/bold] (report.md, report.json, "
        "metrics.png, curves/*.png)"
    )
    return path
