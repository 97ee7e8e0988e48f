"""The ``lossatlas`` command line: ``list``, ``show``, ``plot``, ``compare``, ``bench``.

Each subcommand is a thin layer over the library: the catalog for ``list``/``show``, the
plotting module for ``plot``, the lab for ``compare`` and the bench engine for ``bench``.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table

import lossatlas as la
from lossatlas import _plugins
from lossatlas._catalog import TASKS, LossSpec
from lossatlas._optional import require_all
from lossatlas.docs import example_lines, markdown_table, use_when_line
from lossatlas.lab.command import DEFAULT_TASK
from lossatlas.lab.tasks import COMPARE_TASKS

console = Console()

_F = TypeVar("_F", bound=Callable[..., Any])


def _repeated(*decls: str, metavar: str, help: str) -> Callable[[_F], _F]:
    """A repeatable option: the command gets a tuple of its values (empty by default)."""
    return click.option(*decls, multiple=True, metavar=metavar, help=help)


def _one_of(*decls: str, choices: list[str], help: str) -> Callable[[_F], _F]:
    """An option taking one of ``choices``; the first is the default (shown in ``--help``)."""
    return click.option(
        *decls, type=click.Choice(choices), default=choices[0], show_default=True, help=help
    )


def _file(*decls: str, help: str) -> Callable[[_F], _F]:
    """An option naming a file (a ``Path``; a directory is refused)."""
    return click.option(*decls, type=click.Path(dir_okay=False, path_type=Path), help=help)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(la.__version__, prog_name="lossatlas")
@_repeated(
    "--import",
    "imports",
    metavar="MODULE",
    help=(
        "Import a module (or a .py file) that registers losses, for this command "
        f"(repeatable; also ${_plugins.IMPORT_VARIABLE}, comma-separated)."
    ),
)
@click.pass_context
def main(ctx: click.Context, imports: tuple[str, ...]) -> None:
    """lossatlas: every PyTorch loss in one place, organised by task.

    Losses of installed packages (the lossatlas.losses entry points) and of --import
    modules join the catalog of every command.
    """
    for name in imports:
        try:
            _plugins.import_plugin(name)
        except Exception as error:
            raise click.ClickException(f"--import {name}: {_plugins.one_line(error)}") from None
    if imports:  # compare's worker processes import them too; restored after the command
        before = os.environ.get(_plugins.IMPORT_VARIABLE)
        _plugins.add_to_environment(list(imports))
        ctx.call_on_close(lambda: _restore_environment(before))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", _plugins.PluginWarning)
        _plugins.ensure_loaded()
    for warning in caught:  # one line per failed plugin; the command goes on
        if issubclass(warning.category, _plugins.PluginWarning):
            click.echo(str(warning.message), err=True)
        else:  # a plugin's own warning, shown as Python would
            warnings.showwarning(
                warning.message, warning.category, warning.filename, warning.lineno
            )


def _restore_environment(value: str | None) -> None:
    if value is None:
        os.environ.pop(_plugins.IMPORT_VARIABLE, None)
    else:
        os.environ[_plugins.IMPORT_VARIABLE] = value


def _require_extra(modules: tuple[str, ...], extra: str, purpose: str) -> None:
    """Exit with one line naming the extra to install, before any work starts."""
    try:
        require_all(modules, extra, purpose=purpose)
    except ImportError as error:
        raise click.ClickException(str(error)) from None


@main.command("list")
@click.option("--task", type=click.Choice(list(TASKS)), help="Only the losses for this task.")
@_one_of(
    "--format",
    "fmt",
    choices=["table", "markdown", "names"],
    help="A terminal table, a Markdown table by task, or bare names.",
)
def list_command(task: str | None, fmt: str) -> None:
    """List the catalog's losses, grouped by task: one line each, with when to use it."""
    if fmt == "markdown":
        click.echo(markdown_table(), nl=False)
        return
    specs = la.for_task(task) if task else la.catalog()
    if fmt == "names":
        for spec in specs:
            click.echo(spec.name)
        return
    title = f"{TASKS[task]} ({task})" if task else "the lossatlas catalog"
    if task:
        groups = {task: specs}
    else:  # each loss once, under its first task
        groups = {t: [s for s in specs if s.tasks and s.tasks[0] == t] for t in TASKS}
    # A grid per task, the names in one column as wide as the longest, the "use when" text
    # wrapped beside them: it fits the terminal's width (80 columns and up).
    width = max(len(spec.name) for spec in specs) if specs else 0
    console.print(f"[bold]{title}[/bold]: {len(specs)} losses, with when to use each")
    for name, members in groups.items():
        if not members:
            continue
        if not task:
            console.print(f"\n[bold]{TASKS[name]}[/bold] ({name})", highlight=False)
        grid = Table.grid(padding=(0, 2), pad_edge=True)
        grid.add_column(style="cyan", no_wrap=True, min_width=width)
        grid.add_column(overflow="fold")
        for spec in members:
            grid.add_row(spec.name, use_when_line(spec).replace("``", ""))
        console.print(grid, highlight=False)
    console.print("\n`lossatlas show NAME` for one in detail.")


@main.command("show")
@click.argument("name")
def show_command(name: str) -> None:
    """Show one loss: formula, options, tasks, references and a runnable example."""
    try:
        spec = la.get(name)
    except KeyError as error:
        raise click.ClickException(str(error.args[0])) from None
    _print_spec(spec)


def _print_spec(spec: LossSpec) -> None:
    console.rule(f"[bold]{spec.name}")
    console.print(spec.summary + ".")
    if spec.use_when:
        console.print(f"[bold]use when[/bold]  {spec.use_when}")
    console.print(f"\n[bold]formula[/bold]   {spec.formula}")
    console.print(f"[bold]tasks[/bold]     {', '.join(spec.tasks)}")
    console.print(f"[bold]input[/bold]     {spec.input_kind}")
    console.print(f"[bold]target[/bold]    {spec.target_kind}")
    if spec.module is not None:
        console.print(f"[bold]module[/bold]    lossatlas.nn.{spec.module.__name__}")
    if spec.properties:
        console.print(f"[bold]holds[/bold]     {', '.join(sorted(spec.properties))}")
    if not spec.differentiable:
        console.print("[bold]note[/bold]      not differentiable (a metric)")
    options = spec.options
    if options:
        table = Table(title="options", title_justify="left")
        table.add_column("name", style="cyan")
        table.add_column("default")
        for option, default in options.items():
            table.add_row(option, repr(default))
        console.print(table)
    lines = example_lines(spec)
    if lines:
        console.print("[bold]example[/bold]")
        console.print(Markdown("```python\n" + "\n".join(lines) + "\n```"))
    if spec.references:
        console.print("[bold]references[/bold]")
        for reference in spec.references:
            console.print(f"  - {reference}", highlight=False)


# --------------------------------------------------------------------------- plot (issue 7)


@main.command("plot")
@click.argument("names", nargs=-1)
@_repeated(
    "--activation",
    "activations",
    metavar="NAME",
    help="Draw an activation and its derivative instead (repeatable), e.g. --activation swish.",
)
@_repeated(
    "--param",
    "params",
    metavar="NAME=V1,V2,...",
    help="Sweep an option, e.g. --param gamma=0,0.5,1,2,5 (repeatable).",
)
@_file(
    "-o",
    "--output",
    help="The image to write (PNG, SVG, PDF by extension); default NAME.png.",
)
def plot_command(
    names: tuple[str, ...],
    activations: tuple[str, ...],
    params: tuple[str, ...],
    output: Path | None,
) -> None:
    """Draw losses and their gradients against the residual, probability or margin.

    \b
    Examples:
      lossatlas plot binary_focal_loss --param gamma=0,0.5,1,2,5 -o focal.png
      lossatlas plot huber_loss l1_loss --param delta=0.5,1,2 -o huber.png
      lossatlas plot --activation relu --activation swish --activation maxout -o act.png
    """  # noqa: D301 (click's backspace marker keeps the lists' line breaks)
    from lossatlas.lab.command import plot_cli

    _require_extra(("matplotlib",), "plot", "lossatlas plot")
    if bool(names) == bool(activations):
        raise click.UsageError("give loss NAMES or --activation NAME, not both and not neither")
    if activations:
        from lossatlas.plot import plot_activation

        if params:
            raise click.UsageError("--param sweeps loss options; activations take none")
        path = output or Path(f"{activations[0]}.png")
        try:
            plot_activation(list(activations), path=path)
        except (KeyError, ImportError) as error:
            raise click.ClickException(str(error.args[0])) from None
    else:
        path = plot_cli(names, params, output)
    console.print(f"wrote {path}")


# --------------------------------------------------------------------------- compare (issue 7)


@main.command("compare")
@click.option(
    "--task",
    "task_name",
    type=click.Choice(list(COMPARE_TASKS)),
    help=f"The task (default {DEFAULT_TASK}; with --data, inferred from the target).",
)
@_file(
    "--data",
    help="Your own CSV file (numeric features, a header row) instead of the embedded data.",
)
@click.option("--target", help="The column of --data to predict.")
@click.option("--losses", help="Comma-separated candidates or catalog names (default: all).")
@click.option(
    "--seeds",
    type=click.IntRange(min=1),
    help="Seeds, each one block of the paired test (default 8; 3 with --quick).",
)
@click.option("--epochs", type=click.IntRange(min=1), help="Training epochs (default: per task).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, mps...")
@click.option(
    "--quick",
    is_flag=True,
    help="A smoke run: 3 seeds of fully trained models, too few for a verdict.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("lossatlas-report"),
    show_default=True,
    help="Directory for report.html, report.json, report.md, the plots and tb/.",
)
@click.option(
    "--jobs",
    type=int,
    help="Worker processes, one torch thread each (default: the usable cores).",
)
@_one_of(
    "--engine",
    choices=["local", "ray"],
    help="Where the runs execute: here, or as Ray tasks (pip install 'lossatlas[ray]').",
)
@click.option("--address", help="A running Ray cluster (HOST:6379 or ray://HOST:10001).")
@click.option("--resume", is_flag=True, help="Keep the runs in OUT/report.json; run the rest.")
@click.option(
    "--serve", is_flag=True, help="Serve TensorBoard on OUT/tb while comparing (Ctrl-C stops)."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Where --serve binds.")
@click.option("--port", type=int, default=0, help="--serve's port (default: a free one).")
@click.option(
    "--tensorboard/--no-tensorboard",
    default=True,
    show_default=True,
    help="Write TensorBoard events under OUT/tb.",
)
def compare_command(**options: Any) -> None:
    """Train a small model with each candidate loss and report which one wins on the task.

    Every loss is trained under the same seeds; a seed is one block (the same split, initial
    weights and batch order for every loss), so the losses are compared seed by seed with an
    exact sign-flip test, Holm-corrected. A winner is named only when it is significantly
    better than every other loss; otherwise the top group and the one to start with.

    \b
    Tasks (embedded data, nothing downloaded):
      regression-outliers  diabetes, 10 % gross outliers in the training targets (default)
      binary-imbalanced    digits "is it an 8?", ~2 % positives
      multiclass-longtail  digits, long-tailed training set (ratio 50), balanced test
      segmentation         synthetic shapes on noise, tiny conv net
      metric-learning      digit embeddings, recall@1 on held-out samples
      ranking              generated queries, graded relevance, NDCG@10 and MRR

    \b
    Examples:
      lossatlas compare
      lossatlas compare --task binary-imbalanced --losses bce,binary_focal,ghmc
      lossatlas compare --data mydata.csv --target price --quick
      lossatlas compare --serve --jobs 2     # watch it live in TensorBoard
      lossatlas compare --out R --resume     # finish an interrupted comparison
    """  # noqa: D301 (click's backspace marker keeps the lists' line breaks)
    watch = ("tensorboard",) if options["tensorboard"] or options["serve"] else ()
    _require_extra(("sklearn", "scipy", "matplotlib", *watch), "lab", "lossatlas compare")
    from lossatlas.lab.command import RunOptions, compare_cli

    # The click options are compare_cli's keywords, but for those of where the runs execute.
    run = RunOptions(**{f.name: options.pop(f.name) for f in dataclasses.fields(RunOptions)})
    compare_cli(console, run=run, **options)


# --------------------------------------------------------------------------- bench (issue 6)


@main.command("bench")
@_repeated(
    "--case",
    "cases",
    metavar="NAME",
    help="Run only this case (repeatable); default all. See --list.",
)
@click.option("--list", "list_cases", is_flag=True, help="List the cases and exit.")
@click.option("--quick", is_flag=True, help="Small sizes, no torch.compile variants: seconds.")
@click.option("--repeats", type=click.IntRange(min=1), help="Timed rounds per variant (median).")
@click.option("--threads", type=click.IntRange(min=1), help="torch intra-op threads.")
@_one_of(
    "--clock",
    choices=["wall", "cpu"],
    help="Wall time, or the process's CPU time (steadier on a loaded machine).",
)
@click.option("--no-memory", is_flag=True, help="Skip the peak-memory runs in child processes.")
@_file("--json", "json_path", help="Also write the results as JSON.")
def bench_command(
    cases: tuple[str, ...],
    list_cases: bool,
    quick: bool,
    repeats: int | None,
    threads: int | None,
    clock: str,
    no_memory: bool,
    json_path: Path | None,
) -> None:
    """Time forward+backward of the losses against their alternatives, as ratios.

    Variants of a case run interleaved in one process; medians with warm-up excluded; bytes
    saved for backward; peak extra memory of each variant in a fresh child process.
    """
    from lossatlas.bench import available_cases, print_results, run_bench, to_json

    if list_cases:
        for name in available_cases():
            click.echo(name)
        return
    try:
        results = run_bench(
            list(cases) or None,
            quick,
            repeats=repeats,
            threads=threads,
            clock=clock,
            memory=not no_memory,
            progress=lambda message: console.print(f"[dim]{message}[/dim]"),
        )
    except KeyError as error:
        raise click.ClickException(str(error.args[0])) from None
    print_results(results)
    if json_path is not None:
        settings = {"quick": quick, "repeats": repeats, "threads": threads, "clock": clock}
        json_path.write_text(to_json(results, settings=settings), encoding="utf-8")
        console.print(f"wrote {json_path}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
