"""The training loop of ``lossatlas compare``: every candidate loss x seed x epoch.

For each seed the task's data are built once (split, subsampling and corruption depend on the
seed), so every loss under that seed sees the same data and starts from the same initial
weights; runs are deterministic for a seed on a given device. The fused loss kernels run
uncompiled here (``lossatlas.fused(False)``: the same values), since compiling them would take
longer than these small runs, and torch uses one intra-op thread. Each run trains the task's small
model with AdamW, records the mean training loss (and its parts, for composite losses) per
epoch in a :class:`~lossatlas.LossHistory`, and evaluates the task's metrics on the test split.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from lossatlas._catalog import LossSpec, catalog, get
from lossatlas._fused import fused
from lossatlas.compose import LossParts
from lossatlas.lab.data import Dataset
from lossatlas.lab.tasks import Candidate, Task, generic_candidate
from lossatlas.monitor import LossHistory

__all__ = ["Comparison", "RunResult", "resolve_candidates", "run_comparison"]


@dataclass
class RunResult:
    """One training run: a candidate loss under one seed.

    Attributes:
        candidate: The candidate's key.
        loss: Its catalog name.
        seed: The seed.
        metrics: Test metrics (empty if the run diverged).
        history: Mean training loss (and parts) per epoch; step = epoch.
        seconds: Wall time of the run.
        status: ``"ok"`` or ``"diverged"`` (a non-finite loss stopped it).
        message: What happened, for a diverged run.
    """

    candidate: str
    loss: str
    seed: int
    metrics: dict[str, float]
    history: LossHistory
    seconds: float
    status: str = "ok"
    message: str = ""


@dataclass
class Comparison:
    """Everything a report needs: the task, the settings, the runs and what was skipped."""

    task: Task
    config: dict[str, Any]
    candidates: list[Candidate]
    runs: list[RunResult] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    data: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def results(self, candidate: str) -> list[RunResult]:
        """The finished (not diverged) runs of a candidate, in seed order."""
        return [r for r in self.runs if r.candidate == candidate and r.status == "ok"]


def _total(value: Any) -> Tensor:
    if isinstance(value, LossParts):
        return value.total
    if isinstance(value, tuple):
        return value[0]
    return value


def resolve_candidates(
    task: Task, losses: Sequence[str] | None = None
) -> tuple[list[tuple[Candidate, LossSpec]], list[dict[str, str]]]:
    """The task's candidates whose loss is in the catalog, and those skipped (with why).

    Args:
        task: The task.
        losses: Candidate keys or catalog names to keep (default: every candidate). A catalog
            name that is not one of the task's candidates is compared with
            :func:`~lossatlas.lab.tasks.generic_candidate` if it carries the task's catalog task.

    Raises:
        ValueError: For a name that is neither a candidate nor a suitable catalog loss.
    """
    names = {spec.name for spec in catalog()}
    chosen: list[Candidate] = []
    if losses is None:
        chosen = list(task.candidates)
    else:
        for name in losses:
            matches = [c for c in task.candidates if name in (c.key, c.loss)]
            if matches:
                chosen += [c for c in matches if c not in chosen]
                continue
            if name not in names:
                keys = ", ".join(c.key for c in task.candidates)
                raise ValueError(
                    f"{name!r} is neither a candidate of {task.name} ({keys}) nor a catalog loss"
                )
            spec = get(name)
            if not spec.differentiable:
                raise ValueError(f"{name!r} is not differentiable (a metric), so it cannot train")
            if task.kind == "metric" or task.catalog_task not in spec.tasks:
                raise ValueError(
                    f"{name!r} is a loss for {', '.join(spec.tasks)}; {task.name} compares "
                    f"{task.catalog_task} losses"
                    + (" through its own adapters" if task.kind == "metric" else "")
                )
            chosen.append(generic_candidate(spec, task.kind))
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


def _train_run(
    task: Task,
    candidate: Candidate,
    spec: LossSpec,
    data: Dataset,
    seed: int,
    epochs: int,
    device: torch.device,
    on_epoch: Callable[[], None],
) -> RunResult:
    start = time.perf_counter()
    torch.manual_seed(seed)
    model = task.make_model(data).to(device)
    loss_fn = candidate.build(spec, data, device)
    params = list(model.parameters())
    if isinstance(loss_fn, nn.Module):
        params += list(loss_fn.parameters())
    optimizer = torch.optim.AdamW(params, lr=task.lr, weight_decay=task.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    history = LossHistory()
    model.train()
    for epoch in range(epochs):
        epoch_history = LossHistory()
        for inputs, target in task.batches(data, generator, device):
            value = loss_fn(model(inputs), target)
            total = _total(value)
            if not torch.isfinite(total.detach()).all():
                return RunResult(
                    candidate.key,
                    spec.name,
                    seed,
                    {},
                    history,
                    time.perf_counter() - start,
                    status="diverged",
                    message=f"loss became {float(total.detach()):g} at epoch {epoch + 1}",
                )
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            epoch_history.record(value)
        columns = epoch_history.columns
        mean_total = sum(columns["total"]) / len(epoch_history)
        parts = {name: sum(columns[name]) / len(epoch_history) for name in epoch_history.part_names}
        history.record(
            LossParts(torch.tensor(mean_total), {k: torch.tensor(v) for k, v in parts.items()}),
            step=epoch + 1,
        )
        on_epoch()
    metrics = task.evaluate(model, data, device)
    return RunResult(candidate.key, spec.name, seed, metrics, history, time.perf_counter() - start)


def run_comparison(
    task: Task,
    *,
    losses: Sequence[str] | None = None,
    seeds: int = 3,
    epochs: int | None = None,
    device: str | torch.device = "cpu",
    quick: bool = False,
    load: Callable[[int], Dataset] | None = None,
    progress: Any = None,
) -> Comparison:
    """Train the task's model with each candidate loss over ``seeds`` seeds.

    Args:
        task: The task (see :data:`lossatlas.lab.tasks.TASKS`).
        losses: Candidate keys or catalog names (default: all the task's candidates).
        seeds: Number of seeds (0 .. seeds-1).
        epochs: Training epochs (default: the task's, or its quick setting with ``quick``).
        device: Where to train.
        quick: Smaller data and few epochs (for tests and a first look).
        load: ``load(seed) -> Dataset`` to use instead of the task's embedded data.
        progress: A ``rich.progress.Progress`` to report to (one step per epoch).

    Returns:
        The :class:`Comparison`.

    Raises:
        ValueError: For ``seeds < 1``, ``epochs < 1`` or an unknown loss name.
    """
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds}")
    n_epochs = epochs if epochs is not None else (task.quick_epochs if quick else task.epochs)
    if n_epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {n_epochs}")
    device = torch.device(device)
    threads = torch.get_num_threads()
    # the models are tiny: one intra-op thread is faster than several fighting over the cores
    torch.set_num_threads(1)
    try:
        # compiling the fused kernels would cost more than these small runs (same values)
        with fused(False):
            return _run(task, losses, seeds, n_epochs, device, quick, load, progress)
    finally:
        torch.set_num_threads(threads)


def _run(
    task: Task,
    losses: Sequence[str] | None,
    seeds: int,
    n_epochs: int,
    device: torch.device,
    quick: bool,
    load: Callable[[int], Dataset] | None,
    progress: Any,
) -> Comparison:
    resolved, skipped = resolve_candidates(task, losses)
    config = {
        "task": task.name,
        "seeds": list(range(seeds)),
        "epochs": n_epochs,
        "batch_size": task.batch_size,
        "optimizer": f"AdamW(lr={task.lr:g}, weight_decay={task.weight_decay:g})",
        "device": str(device),
        "quick": quick,
        "losses": [c.key for c, _ in resolved],
        "torch": torch.__version__,
    }
    comparison = Comparison(task, config, [c for c, _ in resolved], skipped=skipped)
    datasets: dict[int, Dataset] = {}
    for seed in range(seeds):
        datasets[seed] = load(seed) if load is not None else task.load(seed, quick)
        comparison.data.append({"seed": seed, **datasets[seed].summary()})
    for note in datasets[0].notes:
        comparison.notes.append(note)

    total = len(resolved) * seeds * n_epochs
    bar = progress.add_task("training", total=total) if progress is not None else None

    def advance() -> None:
        if progress is not None:
            progress.advance(bar)

    for candidate, spec in resolved:
        for seed in range(seeds):
            if progress is not None:
                progress.update(bar, description=f"{candidate.key} · seed {seed}")
            try:
                result = _train_run(
                    task, candidate, spec, datasets[seed], seed, n_epochs, device, advance
                )
            except (TypeError, ValueError, RuntimeError) as error:
                # the loss could not be called this way (its signature or input contract
                # differs from the adapter's): skip the candidate, say why
                comparison.skipped.append(
                    {
                        "candidate": candidate.key,
                        "loss": spec.name,
                        "reason": f"{type(error).__name__}: {error}",
                    }
                )
                comparison.runs = [r for r in comparison.runs if r.candidate != candidate.key]
                comparison.candidates.remove(candidate)
                if progress is not None:
                    progress.advance(bar, (seeds - seed) * n_epochs)
                break
            comparison.runs.append(result)
            if result.status != "ok":
                comparison.notes.append(
                    f"{candidate.key} diverged under seed {seed}: {result.message}"
                )
                if progress is not None:
                    done = len(result.history)
                    progress.advance(bar, n_epochs - done)
    comparison.config["losses"] = [c.key for c in comparison.candidates]
    return comparison
