"""Training batches of ``lossatlas compare``: one order per seed, shared by every candidate.

The order is drawn from a ``torch.Generator`` seeded with the run's seed and used for nothing
else, so every candidate under one seed sees the same batches in the same order (a seed is one
*block* of the paired design; see :mod:`lossatlas.lab.stats`).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from lossatlas.lab.data import DataError, Dataset

__all__ = ["PK_CLASSES", "PK_SAMPLES", "pk_batches", "shuffled_batches"]

#: Metric-learning batches hold ``PK_CLASSES`` classes x ``PK_SAMPLES`` samples each.
PK_CLASSES = 10
PK_SAMPLES = 4


def shuffled_batches(
    data: Dataset,
    batch_size: int,
    generator: torch.Generator,
    device: torch.device,
    *,
    standardise_target: bool = False,
) -> Iterator[tuple[Tensor, Tensor]]:
    """One epoch of shuffled training batches ``(inputs, targets)`` on ``device``.

    With ``standardise_target`` the targets are ``(y - target_center) / target_scale``.
    """
    x, y = data.train.x, data.train.y
    if standardise_target:
        y = (y - data.target_center) / data.target_scale
    order = torch.randperm(len(data.train), generator=generator)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        yield x[idx].to(device), y[idx].to(device)


def pk_batches(
    data: Dataset, generator: torch.Generator, device: torch.device
) -> Iterator[tuple[Tensor, Tensor]]:
    """Batches of ``P`` classes x ``K`` samples each, laid out class by class.

    Raises:
        DataError: For a class with fewer than ``K`` training samples.
    """
    labels = data.train.y
    classes = torch.unique(labels)
    pools = {int(c): torch.nonzero(labels == c).flatten() for c in classes}
    for pool in pools.values():
        if len(pool) < PK_SAMPLES:
            raise DataError(
                f"metric learning needs {PK_SAMPLES} training samples per class, a class has "
                f"{len(pool)}"
            )
    n_batches = max(1, len(labels) // (PK_CLASSES * PK_SAMPLES))
    for _ in range(n_batches):
        chosen = classes[torch.randperm(len(classes), generator=generator)[:PK_CLASSES]]
        idx = []
        for c in chosen.tolist():
            pool = pools[c]
            idx.append(pool[torch.randperm(len(pool), generator=generator)[:PK_SAMPLES]])
        batch = torch.cat(idx)
        yield data.train.x[batch].to(device), labels[batch].to(device)
