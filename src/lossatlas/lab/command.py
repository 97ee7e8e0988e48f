"""What ``lossatlas compare`` and ``lossatlas plot`` do; ``lossatlas.cli`` only declares options.

Every user error becomes a ``click.ClickException`` whose message says what to fix.
"""

from __future__ import annotations

import shutil
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import torch

from lossatlas._optional import require
from lossatlas.lab.data import DataError, load_csv
from lossatlas.lab.describe import own_data_task
from lossatlas.lab.engine import Engine, EngineError, check_ray, default_jobs
from lossatlas.lab.grid import Grid, Interrupted, ResumeError, load_done, save_partial
from lossatlas.lab.tasks import COMPARE_TASKS, Task, get_task

__all__ = ["DEFAULT_TASK", "RunOptions", "compare_cli", "parse_params", "plot_cli"]

#: What ``lossatlas compare`` (and ``make demo``) runs without ``--task``: the task where the
#: choice of loss changes the result most plainly (MSE chases the outliers; robust losses don't).
DEFAULT_TASK = "regression-outliers"

#: The task a CSV target of each kind is compared on: the tabular ones (by name).
_TASK_FOR_KIND = {
    task.kind: task.name
    for task in sorted(COMPARE_TASKS.values(), key=lambda task: task.name)
    if task.tabular
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
    run: RunOptions | None = None,
) -> Path:
    """Run the comparison with a progress bar, print the table and verdicts, write the report.

    ``run`` says where the runs execute and what is watched (``--jobs``, ``--engine``,
    ``--serve``, ``--resume``...); see :class:`RunOptions`.
    """
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

    run = run if run is not None else RunOptions()
    _check_out(out)
    torch_device = _device(device)
    notes: list[str] = []
    task, facts = _resolve_task(task_name, data, target, notes)
    names = [n.strip() for n in losses.split(",") if n.strip()] if losses else None
    n_seeds = seeds if seeds is not None else (QUICK_SEEDS if quick else DEFAULT_SEEDS)
    session = _Session(console, run, out, task, epochs if epochs is not None else task.epochs)
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
    session.start()
    columns = (
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("epochs"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with session, Progress(*columns, console=console, transient=False) as progress:
        try:
            comparison = run_comparison(
                task,
                losses=names,
                seeds=n_seeds,
                epochs=epochs,
                device=torch_device,
                quick=quick,
                progress=progress,
                grid=session.grid,
            )
        except DataError as error:
            raise click.ClickException(str(error)) from None
        except ValueError as error:
            raise click.ClickException(str(error)) from None
        except Interrupted as stop:
            session.interrupted(stop)
        except EngineError as error:
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
        f"\nReport: [bold]{path.resolve()}[/bold] (report.html, report.md, report.json, "
        "metrics.png, curves/*.png, tb/)"
    )
    session.keep_serving()
    return path


# --------------------------------------------------------------------------- running and watching


@dataclass(frozen=True)
class RunOptions:
    """Where ``compare``'s runs execute and how they are watched.

    Attributes:
        jobs: Worker processes (default: the usable cores).
        engine: ``"local"`` or ``"ray"``.
        address: A running Ray cluster (with ``engine="ray"``).
        tensorboard: Write TensorBoard events under ``OUT/tb``.
        serve: Serve TensorBoard on ``OUT/tb`` while comparing, and after until Ctrl-C.
        host: The address TensorBoard binds.
        port: Its port (0: a free one).
        resume: Keep the runs of ``OUT/report.json`` and run only the missing ones.
    """

    jobs: int | None = None
    engine: Engine = "local"
    address: str | None = None
    tensorboard: bool = True
    serve: bool = False
    host: str = "127.0.0.1"
    port: int = 0
    resume: bool = False


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise click.ClickException(f"--out {out} is a file; give a directory for the report")


_REPORT_FILES = ("report.md", "report.html")


class _Session:
    """One ``compare`` invocation's engine, TensorBoard server and saved progress.

    Every check that can fail (``--jobs``, ``--address``, the port, ``--resume``'s report) runs
    in the constructor, before any training and before anything is written.
    """

    def __init__(self, console: Any, run: RunOptions, out: Path, task: Any, epochs: int) -> None:
        self.console, self.run, self.out = console, run, out
        jobs = self._jobs = run.jobs if run.jobs is not None else default_jobs()
        if jobs < 1:
            raise click.ClickException(f"--jobs must be at least 1, got {jobs}")
        if run.address is not None and run.engine != "ray":
            raise click.ClickException("--address names a Ray cluster: add --engine ray")
        if run.engine == "ray":
            try:
                check_ray(run.address)
            except EngineError as error:
                raise click.ClickException(str(error)) from None
        done: dict[tuple[str, int], dict[str, Any]] = {}
        if run.resume:
            try:
                done = load_done(out, task.name, epochs)
            except ResumeError as error:
                raise click.ClickException(str(error)) from None
        self._config = {"task": task.name, "epochs": epochs}
        self._runs = list(done.values())
        tensorboard = None
        if run.tensorboard or run.serve:
            try:
                require("tensorboard", "lab", purpose="compare's TensorBoard view")
                tensorboard = out / "tb"
            except ImportError as error:
                if run.serve:
                    raise click.ClickException(str(error)) from None
                console.print(f"[yellow]note:[/yellow] no TensorBoard events: {error}")
        self.server: Any = None
        if run.serve:
            from lossatlas.lab.tensorboard import ServeError, serve

            try:
                self.server = serve(out / "tb", host=run.host, port=run.port)
            except ServeError as error:
                raise click.ClickException(str(error)) from None
        self._task, self._tensorboard, self._done = task, tensorboard, done

    def start(self) -> None:
        """Mark ``OUT`` incomplete until the report is written, say where to watch."""
        run, out, task, tensorboard, done = (
            self.run,
            self.out,
            self._task,
            self._tensorboard,
            self._done,
        )
        console = self.console
        out.mkdir(parents=True, exist_ok=True)
        if not run.resume:
            for name in _REPORT_FILES:
                (out / name).unlink(missing_ok=True)
            if tensorboard is not None:  # an earlier comparison's curves would mix with these
                from lossatlas.lab.tensorboard import task_dir

                shutil.rmtree(task_dir(tensorboard, task.name), ignore_errors=True)
        save_partial(out, self._config, self._runs)
        if self.server is not None:
            console.print(f"TensorBoard: [bold]{self.server.url}[/bold]", highlight=False)
        if done:
            console.print(f"resuming: {len(done)} runs kept from {out / 'report.json'}")
        self.grid = Grid(
            jobs=self._jobs,
            engine=run.engine,
            address=run.address,
            tensorboard=tensorboard,
            done=done,
            on_result=self._saved,
        )

    def _saved(self, result: dict[str, Any]) -> None:
        self._runs.append(result)
        save_partial(self.out, self._config, self._runs)

    def interrupted(self, stop: Interrupted) -> None:
        save_partial(self.out, self._config, stop.runs)
        self.console.print(
            f"\n[yellow]interrupted[/yellow]: {len(stop.runs)} of {stop.total} runs finished, "
            f"kept in {self.out / 'report.json'}; the same command with --resume runs the rest",
            highlight=False,
        )
        raise SystemExit(130)

    def keep_serving(self) -> None:
        if self.server is None:
            return
        self.console.print(
            f"TensorBoard is still serving at [bold]{self.server.url}[/bold]; Ctrl-C to stop",
            highlight=False,
        )
        try:
            while True:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.server.stop()

    def __enter__(self) -> _Session:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.server is not None and exc[0] is not None:
            self.server.stop()
