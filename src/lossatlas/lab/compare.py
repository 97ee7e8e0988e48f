"""The runs of ``lossatlas compare``: every candidate loss x seed, one seed being one block.

**A seed is a block.** Under seed ``s`` every candidate gets the same data split
(``task.load(s)``), the same initial weights (``torch.manual_seed(s)`` right before
``task.make_model``) and the same batches in the same order (a generator seeded with ``s`` that
nothing else draws from). Each run records fingerprints of the three (:func:`run_one`'s
``"block"``) and :func:`run_comparison` checks that they agree across the candidates of a seed,
so the per-seed differences that :mod:`lossatlas.lab.stats` tests are differences between losses
and nothing else.

:func:`run_one` is one training run as a plain function -- ``(task, candidate, seed, config)`` in,
a JSON-safe result dict out -- so it can be shipped to a worker process; the decision
(:func:`lossatlas.lab.stats.decide`) is a pure function of those dicts. The fused loss kernels run
uncompiled here (``lossatlas.fused(False)``: the same values), since compiling them would take
longer than these small runs, and torch uses one intra-op thread (the models are tiny).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from lossatlas._catalog import LossSpec, catalog, get
from lossatlas._fused import fused
from lossatlas.lab.adapters import Candidate, generic_candidate, total_loss
from lossatlas.lab.data import Dataset
from lossatlas.lab.grid import Grid, execute
from lossatlas.lab.identical import Merged, merge_identical
from lossatlas.lab.tasks import Task
from lossatlas.monitor import LossHistory

__all__ = [
    "DEFAULT_SEEDS",
    "QUICK_SEEDS",
    "Comparison",
    "RunConfig",
    "resolve_candidates",
    "run_comparison",
    "run_one",
]

#: Seeds of a full run: enough for the exact paired test to name a winner among up to 7
#: candidates (see :func:`lossatlas.lab.stats.seeds_needed`).
DEFAULT_SEEDS = 8
#: Seeds of ``--quick``, a smoke run: fully trained models, too few seeds for a verdict.
QUICK_SEEDS = 3


@dataclass(frozen=True)
class RunConfig:
    """The settings of one run (plain values, so a run can be shipped to another process).

    Attributes:
        epochs: Training epochs.
        device: A torch device string.
    """

    epochs: int
    device: str = "cpu"


@dataclass
class Comparison:
    """Everything a report needs: the task, the settings, the runs and what was skipped.

    Attributes:
        task: The task.
        config: The settings, for the report.
        candidates: The candidates that ran, in the task's order of familiarity.
        runs: The per-run result dicts of :func:`run_one`.
        skipped: Candidates that could not run, with why.
        data: The summary of each seed's data.
        notes: What was done along the way (dropped rows, diverged runs...).
        merged: Kept candidate key -> the candidates found identical to it (not run again).
        describe: With your own data, what it looks like (see :mod:`lossatlas.lab.describe`).
    """

    task: Task
    config: dict[str, Any]
    candidates: list[Candidate]
    runs: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    data: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    merged: dict[str, list[Merged]] = field(default_factory=dict)
    describe: dict[str, Any] | None = None

    @property
    def seeds(self) -> list[int]:
        """The seeds, in order."""
        return list(self.config["seeds"])

    def table(self, metric: str) -> dict[str, list[float]]:
        """Candidate key -> the metric under each seed (``nan`` where the run did not finish)."""
        out: dict[str, list[float]] = {}
        for candidate in self.candidates:
            by_seed = {
                r["seed"]: r["metrics"].get(metric, math.nan)
                for r in self.runs
                if r["candidate"] == candidate.key and r["status"] == "ok"
            }
            out[candidate.key] = [
                math.nan if by_seed.get(s) is None else float(by_seed[s]) for s in self.seeds
            ]
        return out

    def chance(self, metric: str) -> float | None:
        """The metric's chance level, averaged over the seeds (``None`` if it has none)."""
        values = [r["chance"][metric] for r in self.runs if metric in r.get("chance", {})]
        return sum(values) / len(values) if values else None


#: ``observe(epoch, model, mean_loss, mean_parts)``, called after every epoch of a run.
Observer = Callable[[int, nn.Module, float, dict[str, float]], None]


@contextmanager
def _lab_kernels() -> Iterator[None]:
    """One intra-op thread and uncompiled fused kernels for the duration of a block."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with fused(False):
            yield
    finally:
        torch.set_num_threads(threads)


def _digest(*tensors: Tensor) -> str:
    hasher = hashlib.sha1()
    for tensor in tensors:
        hasher.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return hasher.hexdigest()[:16]


def run_one(
    task: Task,
    candidate: Candidate,
    seed: int,
    config: RunConfig,
    *,
    data: Dataset | None = None,
    on_epoch: Callable[[], None] | None = None,
    observe: Observer | None = None,
) -> dict[str, Any]:
    """Train the task's model with one candidate loss under one seed; test it.

    Args:
        task: The task.
        candidate: The candidate (its loss must be in the catalog of the process running this).
        seed: The seed: the data split, the initial weights and the batch order.
        config: Epochs and device.
        data: ``task.load(seed)`` if already built (it is built otherwise).
        on_epoch: Called after every epoch (a progress bar).
        observe: ``observe(epoch, model, mean_loss, mean_parts)`` after every epoch (the
            TensorBoard view); it must leave the model and the random state as it found them.

    Returns:
        A JSON-safe dict: ``candidate``, ``loss``, ``seed``, ``status`` (``"ok"``,
        ``"diverged"`` -- a non-finite loss stopped it -- or ``"error"`` -- the loss could not
        be called this way), ``message``, ``seconds``, ``metrics`` (test metrics, empty unless
        ok), ``chance`` (each metric's chance level on this split), ``epoch_loss`` and
        ``epoch_parts`` (mean training loss and parts per epoch), and ``block`` (fingerprints
        of the data, the initial weights and the first epoch's batches).
    """
    start = time.perf_counter()
    data = task.load(seed) if data is None else data
    device = torch.device(config.device)
    result: dict[str, Any] = {
        "candidate": candidate.key,
        "loss": candidate.loss,
        "seed": seed,
        "status": "ok",
        "message": "",
        "seconds": 0.0,
        "metrics": {},
        "chance": {m.key: float(m.chance(data)) for m in task.metrics if m.chance is not None},
        "epoch_loss": [],
        "epoch_parts": {},
        "block": {"data": _digest(data.train.x, data.train.y, data.test.x, data.test.y)},
    }
    with _lab_kernels():
        try:
            _train(
                task,
                candidate,
                get(candidate.loss),
                data,
                seed,
                config,
                device,
                result,
                on_epoch,
                observe,
            )
        except (TypeError, ValueError, RuntimeError, IndexError) as error:
            # the loss could not be called this way (its signature or input contract differs
            # from the adapter's)
            result.update(status="error", message=f"{type(error).__name__}: {error}", metrics={})
    result["seconds"] = round(time.perf_counter() - start, 3)
    return result


def _train(
    task: Task,
    candidate: Candidate,
    spec: LossSpec,
    data: Dataset,
    seed: int,
    config: RunConfig,
    device: torch.device,
    result: dict[str, Any],
    on_epoch: Callable[[], None] | None,
    observe: Observer | None = None,
) -> None:
    torch.manual_seed(seed)
    model = task.make_model(data).to(device)
    result["block"]["init"] = _digest(*model.state_dict().values())
    loss_fn = candidate.build(spec, data, device)
    params = list(model.parameters())
    if isinstance(loss_fn, nn.Module):
        params += list(loss_fn.parameters())
    optimizer = torch.optim.AdamW(params, lr=task.lr, weight_decay=task.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    batches = hashlib.sha1()
    model.train()
    for epoch in range(config.epochs):
        epoch_history = LossHistory()
        for inputs, target in task.batches(data, generator, device):
            if epoch == 0:
                batches.update(target.cpu().contiguous().numpy().tobytes())
            value = loss_fn(model(inputs), target)
            total = total_loss(value)
            if not torch.isfinite(total.detach()).all():
                result["block"]["batches"] = batches.hexdigest()[:16]
                result.update(
                    status="diverged",
                    message=f"loss became {float(total.detach()):g} at epoch {epoch + 1}",
                )
                return
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            epoch_history.record(value)
        if epoch == 0:
            result["block"]["batches"] = batches.hexdigest()[:16]
        columns = epoch_history.columns
        n = len(epoch_history)
        result["epoch_loss"].append(sum(columns["total"]) / n)
        for name in epoch_history.part_names:
            result["epoch_parts"].setdefault(name, []).append(sum(columns[name]) / n)
        if observe is not None:
            parts = {name: values[-1] for name, values in result["epoch_parts"].items()}
            observe(epoch + 1, model, result["epoch_loss"][-1], parts)
        if on_epoch is not None:
            on_epoch()
    result["metrics"] = task.evaluate(model, data, device)


def resolve_candidates(
    task: Task, losses: Sequence[str] | None = None
) -> tuple[list[tuple[Candidate, LossSpec]], list[dict[str, str]]]:
    """The task's candidates whose loss is in the catalog, and those skipped (with why).

    Args:
        task: The task.
        losses: Candidate keys or catalog names to keep (default: the task's default set, in
            the task's order). A catalog name that is not one of the task's candidates is
            compared with :func:`~lossatlas.lab.adapters.generic_candidate` if it carries the
            task's catalog task; the task's own candidates keep the task's order (of
            familiarity), the others follow in the order given.

    Raises:
        ValueError: For a name that is neither a candidate nor a suitable catalog loss.
    """
    names = {spec.name for spec in catalog()}
    chosen: list[Candidate] = []
    extra: list[Candidate] = []
    if losses is None:
        chosen = [c for c in task.candidates if task.defaults is None or c.key in task.defaults]
    else:
        picked: set[str] = set()
        for name in losses:
            matches = [c for c in task.candidates if name in (c.key, c.loss)]
            if matches:
                picked.update(c.key for c in matches)
                continue
            if name not in names:
                keys = ", ".join(c.key for c in task.candidates)
                raise ValueError(
                    f"{name!r} is neither a candidate of {task.name} ({keys}) nor a catalog loss"
                )
            spec = get(name)
            if not spec.differentiable:
                raise ValueError(f"{name!r} is not differentiable (a metric), so it cannot train")
            own_adapters = task.kind in ("metric", "ranking")
            if own_adapters or task.catalog_task not in spec.tasks:
                raise ValueError(
                    f"{name!r} is a loss for {', '.join(spec.tasks)}; {task.name} compares "
                    f"{task.catalog_task} losses"
                    + (" through its own adapters" if own_adapters else "")
                )
            if all(c.key != name for c in extra):
                extra.append(generic_candidate(spec, task.kind))
        chosen = [c for c in task.candidates if c.key in picked] + extra
    resolved, skipped = [], []
    for candidate in chosen:
        if candidate.loss in names:
            resolved.append((candidate, get(candidate.loss)))
        else:
            skipped.append(
                {
                    "candidate": candidate.key,
                    "loss": candidate.loss,
                    "reason": f"{candidate.loss} is not in this version's catalog",
                }
            )
    return resolved, skipped


def run_comparison(
    task: Task,
    *,
    losses: Sequence[str] | None = None,
    seeds: int = DEFAULT_SEEDS,
    epochs: int | None = None,
    device: str | torch.device = "cpu",
    quick: bool = False,
    merge: bool = True,
    progress: Any = None,
    grid: Grid | None = None,
) -> Comparison:
    """Train the task's model with each candidate loss over ``seeds`` seeds.

    Candidates that compute the same loss up to a positive factor on this task's inputs are
    found first (:func:`~lossatlas.lab.identical.merge_identical`) and run once, as one row.

    Args:
        task: The task (see :data:`lossatlas.lab.tasks.COMPARE_TASKS`).
        losses: Candidate keys or catalog names (default: the task's candidates).
        seeds: Number of seeds (0 .. seeds-1), each one block of the paired design.
        epochs: Training epochs (default: the task's).
        device: Where to train.
        quick: Marks the run as a smoke run in the report (the caller picks fewer seeds; the
            models are trained exactly as in a full run).
        merge: Whether to merge identical candidates.
        progress: A ``rich.progress.Progress`` to report to (one step per epoch).
        grid: Where and how the runs execute (worker processes, Ray, TensorBoard events,
            runs kept from an interrupted comparison); default: one after another here.

    Returns:
        The :class:`Comparison`.

    Raises:
        ValueError: For ``seeds < 1``, ``epochs < 1`` or an unknown loss name.
        RuntimeError: If the candidates of a seed did not share its block (a bug).
        lossatlas.lab.grid.Interrupted: On Ctrl-C, with the runs that finished.
        lossatlas.lab.engine.EngineError: If the engine cannot start.
    """
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds}")
    n_epochs = epochs if epochs is not None else task.epochs
    if n_epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {n_epochs}")
    config = RunConfig(epochs=n_epochs, device=str(torch.device(device)))
    resolved, skipped = resolve_candidates(task, losses)
    datasets = {seed: task.load(seed) for seed in range(seeds)}
    merged: dict[str, list[Merged]] = {}
    if merge and len(resolved) > 1:
        with _lab_kernels():
            resolved, merged = merge_identical(task, resolved, datasets[0], seed=0)
    comparison = Comparison(
        task,
        {
            "task": task.name,
            "seeds": list(range(seeds)),
            "epochs": n_epochs,
            "batch_size": task.batch_size,
            "optimizer": f"AdamW(lr={task.lr:g}, weight_decay={task.weight_decay:g})",
            "device": config.device,
            "quick": quick,
            "losses": [c.key for c, _ in resolved],
            "torch": torch.__version__,
        },
        [c for c, _ in resolved],
        skipped=skipped,
        merged=merged,
    )
    for seed in range(seeds):
        comparison.data.append({"seed": seed, **datasets[seed].summary()})
    comparison.notes += datasets[0].notes

    bar = None
    if progress is not None:
        bar = progress.add_task("training", total=len(resolved) * seeds * n_epochs)

    def advance(epochs: int) -> None:
        if progress is not None and epochs:
            progress.advance(bar, epochs)

    grid = grid if grid is not None else Grid()
    results = execute(grid, task, [c for c, _ in resolved], range(seeds), config, datasets, advance)
    comparison.notes += grid.notes
    for candidate, _ in resolved:
        runs: list[dict[str, Any]] = []
        for seed in range(seeds):
            result = results[(candidate.key, seed)]
            if result["status"] == "error":
                comparison.skipped.append(
                    {
                        "candidate": candidate.key,
                        "loss": candidate.loss,
                        "reason": result["message"],
                    }
                )
                comparison.candidates.remove(candidate)
                comparison.merged.pop(candidate.key, None)
                runs = []
                break
            if result["status"] == "diverged":
                comparison.notes.append(
                    f"{candidate.key} diverged under seed {seed}: {result['message']}"
                )
            runs.append(result)
        comparison.runs += runs
    comparison.config["losses"] = [c.key for c in comparison.candidates]
    check_blocks(comparison.runs)
    return comparison


def check_blocks(runs: Sequence[dict[str, Any]]) -> None:
    """Check that every candidate under a seed saw the same data, initial weights and batches.

    Raises:
        RuntimeError: Naming the seed and what differed.
    """
    by_seed: dict[int, dict[str, Any]] = {}
    for run in runs:
        first = by_seed.setdefault(run["seed"], run)
        for part in ("data", "init", "batches"):
            mine, theirs = run["block"].get(part), first["block"].get(part)
            if mine is not None and theirs is not None and mine != theirs:
                raise RuntimeError(
                    f"seed {run['seed']} is not one block: {run['candidate']} and "
                    f"{first['candidate']} got different {part}"
                )
