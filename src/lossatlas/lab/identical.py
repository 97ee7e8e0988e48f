"""Identical candidates: two names for the same loss are one candidate.

Two candidates are *identical on a task* when, on the task's example inputs, one loss is a
positive constant times the other: the ratio of their values is the same on every probe and
their gradients with respect to the model's output point the same way (``grad_b = c grad_a``).
``huber_loss`` and ``smooth_l1_loss`` at their defaults (``delta = beta = 1``) are identical
(``c = 1``); so are ``l1_loss`` and the pinball loss at the median (``c = 1/2``), and
``pos_weight`` BCE and alpha-balanced BCE with the matching class weights (``c`` = the
positives' share). Trained with AdamW, whose steps do not depend on the loss's scale (up to its
``eps``), identical candidates give the same model, so :func:`merge_identical` runs the first of
them (the more familiar, by the task's order) and reports the others in its row.

The probes are the task's real inputs: the first two training batches of the seed-0 split, the
model's outputs on them at its seed-0 initialisation, and those outputs moved by Gaussian noise
of standard deviation 1 and 3 (so both the quadratic and the linear regime of a Huber-type loss
are exercised). A loss that carries trainable parameters of its own (ArcFace's class centres) is
never merged: its values depend on an initialisation of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossatlas._catalog import LossSpec
from lossatlas.lab.adapters import Candidate, LossFn, total_loss
from lossatlas.lab.data import Dataset
from lossatlas.lab.tasks import Task

__all__ = ["Merged", "loss_factor", "merge_identical", "probes"]

#: Relative tolerance on the value ratio and the gradient (float32 losses).
RTOL = 1e-4


@dataclass(frozen=True)
class Merged:
    """A candidate merged into another: ``its loss = factor x the kept candidate's loss``."""

    key: str
    loss: str
    factor: float


def probes(task: Task, data: Dataset, seed: int = 0) -> list[tuple[Tensor, Tensor]]:
    """Example ``(output, target)`` pairs of the task: real batches, real and moved outputs."""
    torch.manual_seed(seed)
    model = task.make_model(data)
    generator = torch.Generator().manual_seed(seed)
    noise = torch.Generator().manual_seed(seed + 1)
    out: list[tuple[Tensor, Tensor]] = []
    with torch.no_grad():
        for i, (inputs, target) in enumerate(task.batches(data, generator, torch.device("cpu"))):
            if i == 2:
                break
            output = model(inputs)
            for scale in (0.0, 1.0, 3.0):
                moved = output + scale * torch.randn(output.shape, generator=noise)
                if task.kind == "metric":
                    moved = F.normalize(moved, dim=1)
                out.append((moved, target))
    return out


def _value_and_grad(loss_fn: LossFn, output: Tensor, target: Tensor) -> tuple[float, Tensor]:
    leaf = output.detach().clone().requires_grad_(True)
    value = total_loss(loss_fn(leaf, target.clone()))
    (grad,) = torch.autograd.grad(value, leaf, allow_unused=True)
    return float(value.detach()), torch.zeros_like(leaf) if grad is None else grad


def loss_factor(
    a: LossFn, b: LossFn, examples: list[tuple[Tensor, Tensor]], *, rtol: float = RTOL
) -> float | None:
    """``c > 0`` with ``b = c a`` on every example (values and gradients), else ``None``.

    Examples where both losses and both gradients are zero say nothing and are passed over.
    """
    ratios: list[float] = []
    grads: list[tuple[Tensor, Tensor]] = []
    for output, target in examples:
        value_a, grad_a = _value_and_grad(a, output, target)
        value_b, grad_b = _value_and_grad(b, output, target)
        finite = math.isfinite(value_a) and math.isfinite(value_b)
        if not (finite and torch.isfinite(grad_a).all() and torch.isfinite(grad_b).all()):
            return None
        if value_a == 0.0 and value_b == 0.0:
            if grad_a.abs().max() == 0 and grad_b.abs().max() == 0:
                continue
            return None
        if value_a == 0.0 or value_b / value_a <= 0:
            return None
        ratios.append(value_b / value_a)
        grads.append((grad_a, grad_b))
    if not ratios:
        return None
    factor = ratios[0]
    if any(abs(r - factor) > rtol * factor for r in ratios):
        return None
    for grad_a, grad_b in grads:
        scale = float(grad_b.abs().max()) or 1.0
        if float((grad_b - factor * grad_a).abs().max()) > rtol * 10 * scale:
            return None
    return factor


def merge_identical(
    task: Task,
    resolved: list[tuple[Candidate, LossSpec]],
    data: Dataset,
    *,
    seed: int = 0,
) -> tuple[list[tuple[Candidate, LossSpec]], dict[str, list[Merged]]]:
    """Keep the first candidate of every group of identical ones; say which were merged.

    Args:
        task: The task (its model and batches make the probes).
        resolved: ``(candidate, spec)`` pairs in the task's order of familiarity.
        data: The seed's data.
        seed: The seed of the probes' model and batches.

    Returns:
        The kept pairs (in order) and, for each kept key, the candidates merged into it.
    """
    examples = probes(task, data, seed)
    device = torch.device("cpu")
    built: list[LossFn | None] = []
    for candidate, spec in resolved:
        try:
            loss_fn = candidate.build(spec, data, device)
        except (TypeError, ValueError, RuntimeError):
            loss_fn = None
        built.append(None if isinstance(loss_fn, nn.Module) else loss_fn)
    kept: list[int] = []
    merged: dict[str, list[Merged]] = {}
    for i, (candidate, _) in enumerate(resolved):
        target_of = None
        if built[i] is not None:
            for j in kept:
                fn_j, fn_i = built[j], built[i]
                if fn_j is None or fn_i is None:
                    continue
                try:
                    factor = loss_factor(fn_j, fn_i, examples)
                except (TypeError, ValueError, RuntimeError, IndexError):
                    factor = None
                if factor is not None:
                    target_of = (j, factor)
                    break
        if target_of is None:
            kept.append(i)
        else:
            j, factor = target_of
            merged.setdefault(resolved[j][0].key, []).append(
                Merged(candidate.key, candidate.loss, factor)
            )
    return [resolved[i] for i in kept], merged
