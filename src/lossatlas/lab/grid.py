"""How ``lossatlas compare`` runs its (loss, seed) grid: engine, live view, saved progress.

:func:`execute` takes the candidates and seeds of a comparison and returns every run's result
dict (:func:`lossatlas.lab.compare.run_one`), however it was run:

* through :func:`lossatlas.lab.engine.run_grid` -- in this process, in ``--jobs`` worker
  processes, or on Ray (the task and candidates are plain picklable values, shipped with each
  run);
* with each run's TensorBoard events under ``OUT/tb`` written as it trains (training loss and
  parts, validation metrics every epoch, test metrics and an HParams summary at the end), and
  the custom-scalars layout of the task;
* skipping the runs already done (``--resume``: the runs of ``OUT/report.json``) and saving
  each run as it finishes (``report.json`` marked ``"complete": false`` until the report is
  written), so an interrupted comparison loses only the runs in flight.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch

from lossatlas._catalog import get
from lossatlas.lab.engine import Engine, RunSpec, pending_specs, run_grid

__all__ = ["Grid", "Interrupted", "ResumeError", "execute", "load_done", "save_partial"]


class Interrupted(Exception):
    """Ctrl-C stopped the grid; ``runs`` are those that finished (to save for ``--resume``)."""

    def __init__(self, runs: list[dict[str, Any]], total: int) -> None:
        super().__init__(f"interrupted after {len(runs)} of {total} runs")
        self.runs = runs
        self.total = total


class ResumeError(ValueError):
    """``--resume`` was asked of a directory whose report cannot be continued."""


@dataclass
class Grid:
    """How to run the grid (the defaults: one after another in this process, nothing saved).

    Attributes:
        jobs: Worker processes (local engine) or CPUs of a local Ray instance.
        engine: ``"local"`` or ``"ray"``.
        address: A running Ray cluster.
        tensorboard: The TensorBoard root (``OUT/tb``), or ``None`` for no events.
        done: Runs already finished (``--resume``), by ``(candidate, seed)``.
        on_result: Called with each run's result as it finishes (to save progress).
        notes: Filled with what the grid had to decide (a loss that cannot leave this process).
    """

    jobs: int = 1
    engine: Engine = "local"
    address: str | None = None
    tensorboard: Path | None = None
    done: Mapping[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    on_result: Callable[[dict[str, Any]], None] | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Job:
    """Everything a run needs besides its spec; picklable, so it can go to a worker."""

    task: Any
    candidates: Mapping[str, Any]
    config: Any
    tensorboard: str | None


_DATA: dict[tuple[str, int], Any] = {}  # this process's datasets, one per (task, seed)


def _dataset(task: Any, seed: int) -> Any:
    key = (task.name, seed)
    if key not in _DATA:
        _DATA[key] = task.load(seed)
    return _DATA[key]


def _validation_metrics(task: Any, model: torch.nn.Module, data: Any, device: Any) -> dict:
    """The task's metrics with the validation split in the test split's place.

    The random state is restored afterwards and the model put back in training mode, so that
    watching a run does not change it.
    """
    if len(data.val) == 0:
        return {}
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        metrics = task.evaluate(model, dataclasses.replace(data, test=data.val), device)
    model.train()
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}


def run_cell(job: _Job, spec: RunSpec, tick: Callable[[], None]) -> dict[str, Any]:
    """One (loss, seed) run of the grid (the engine's run function)."""
    from lossatlas.lab.compare import run_one

    task, candidate = job.task, job.candidates[spec.candidate]
    data = _dataset(task, spec.seed)
    writer = None
    observe = None
    if job.tensorboard is not None:
        from lossatlas.lab.tensorboard import RunWriter

        writer = RunWriter(job.tensorboard, task.name, candidate.key, spec.seed)

        def observe(epoch: int, model: Any, total: float, parts: Mapping[str, float]) -> None:
            device = next(model.parameters()).device
            assert writer is not None
            writer.epoch(epoch, total, parts, _validation_metrics(task, model, data, device))

    result = run_one(
        task, candidate, spec.seed, job.config, data=data, on_epoch=tick, observe=observe
    )
    if writer is not None:
        if result["status"] == "ok":
            hparams = {
                "loss": candidate.key,
                "catalog_loss": candidate.loss,
                "setting": candidate.setting,
                "seed": spec.seed,
                "epochs": len(result["epoch_loss"]),
            }
            finite = {k: v for k, v in result["metrics"].items() if math.isfinite(v)}
            writer.finish(len(result["epoch_loss"]), hparams, finite)
        else:
            writer.close()
    return result


def _portable(loss: str) -> bool:
    """Whether a fresh worker process finds ``loss`` in its catalog (not one registered here)."""
    module = getattr(get(loss).function, "__module__", None) or ""
    if module == "__main__":
        return False
    try:
        return importlib.util.find_spec(module) is not None and module.startswith("lossatlas")
    except (ImportError, ValueError):
        return False


def execute(
    grid: Grid,
    task: Any,
    candidates: Sequence[Any],
    seeds: Sequence[int],
    config: Any,
    datasets: Mapping[int, Any],
    on_tick: Callable[[int], None],
) -> dict[tuple[str, int], dict[str, Any]]:
    """Every run of ``candidates`` x ``seeds``, by ``(candidate key, seed)``.

    Raises:
        Interrupted: On Ctrl-C, with the runs that finished (including ``grid.done``'s).
        lossatlas.lab.engine.EngineError: If the engine cannot start.
    """
    specs = [RunSpec(c.key, s, config.epochs) for c in candidates for s in seeds]
    wanted = {s.key for s in specs}
    done = {k: v for k, v in grid.done.items() if k in wanted}
    todo = pending_specs(specs, done)
    on_tick(sum(len(r.get("epoch_loss", [])) or config.epochs for r in done.values()))
    if grid.tensorboard is not None:
        from lossatlas.lab.tensorboard import write_layout

        write_layout(grid.tensorboard, task.name, [(m.key, m.label) for m in task.metrics])
    jobs, engine = grid.jobs, grid.engine
    stuck = sorted({c.loss for c in candidates if not _portable(c.loss)})
    if stuck and (jobs > 1 or engine != "local"):
        grid.notes.append(
            f"ran in this process, one run at a time: {', '.join(stuck)} is registered in this "
            "process only, so worker processes cannot find it"
        )
        jobs, engine = 1, "local"
    _DATA.clear()
    for seed, data in datasets.items():  # what this process built already
        _DATA[(task.name, seed)] = data
    job = _Job(
        task,
        {c.key: c for c in candidates},
        config,
        None if grid.tensorboard is None else str(grid.tensorboard),
    )

    def finished(spec: RunSpec, result: dict[str, Any]) -> None:
        # a run that stopped early (diverged, error) leaves its share of the bar to fill
        on_tick(spec.epochs - len(result["epoch_loss"]))
        if grid.on_result is not None:
            grid.on_result(result)

    outcome = run_grid(
        partial(run_cell, job),
        todo,
        jobs=jobs,
        engine=engine,
        address=grid.address,
        on_tick=on_tick,
        on_result=finished,
    )
    results = {**done, **outcome.results}
    ordered = {s.key: results[s.key] for s in specs if s.key in results}
    if outcome.interrupted:
        raise Interrupted(list(ordered.values()), len(specs))
    return ordered


# --------------------------------------------------------------------------- report.json


def _write_json(path: Path, payload: Mapping[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    tmp.replace(path)  # whole or not at all


def save_partial(out: Path, config: Mapping[str, Any], runs: Sequence[dict[str, Any]]) -> Path:
    """Write ``out/report.json`` with the runs so far, marked ``"complete": false``."""
    from lossatlas.lab.report import _clean  # report imports this module

    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.json"
    _write_json(path, _clean({"complete": False, "config": dict(config), "runs": list(runs)}))
    return path


def load_done(out: Path, task: str, epochs: int) -> dict[tuple[str, int], dict[str, Any]]:
    """The finished runs of ``out/report.json`` that ``--resume`` can keep.

    Raises:
        ResumeError: If there is no report, it is not one, or it was made for another task or
            number of epochs (its runs would not be comparable).
    """
    path = out / "report.json"
    if not path.is_file():
        raise ResumeError(f"--resume: there is no {path} to resume")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        config, runs = report["config"], report["runs"]
    except (ValueError, KeyError, TypeError):
        raise ResumeError(f"--resume: {path} is not a lossatlas compare report") from None
    if config.get("task") != task:
        raise ResumeError(
            f"--resume: {path} compares {config.get('task')!r}, not {task!r}; "
            "use another --out or the same --task"
        )
    if config.get("epochs") != epochs:
        raise ResumeError(
            f"--resume: {path} was trained for {config.get('epochs')} epochs, not {epochs}; "
            "use the same --epochs or another --out"
        )
    return {(r["candidate"], r["seed"]): r for r in runs if r.get("status") != "error"}
