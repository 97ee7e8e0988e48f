"""The ``ranking`` task of ``lossatlas compare``: generated queries, an item scorer, NDCG and MRR.

:func:`synthetic_ranking` draws queries whose items have features ``x`` and a graded relevance
from a known scoring function of them plus noise; the model scores each item on its own
(:class:`ItemScorer`); the list losses see ``(scores, relevance, mask)`` through
:func:`listwise` and the runs are judged by NDCG@10 and MRR on held-out queries
(:func:`evaluate_ranking`).

A split's ``x`` is ``(Q, L, F)`` (queries x list slots x features) and ``y`` is ``(Q, L)``:
the grade of each item, :data:`PAD` at the padding of the shorter lists.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from lossatlas._catalog import LossSpec
from lossatlas.lab.data import Dataset, Split
from lossatlas.lab.models import MLP

__all__ = [
    "PAD",
    "ItemScorer",
    "evaluate_ranking",
    "item_scorer",
    "listwise",
    "mrr",
    "ndcg_at_k",
    "random_mrr",
    "random_ndcg_at_10",
    "synthetic_ranking",
]

#: The target value of a padded list slot.
PAD = -1.0
#: Items per list: between ``_MIN_ITEMS`` and ``_SLOTS``.
_SLOTS = 20
_MIN_ITEMS = 8
_FEATURES = 12
#: Grade thresholds: quantiles of the noisy utility (60 % grade 0, 25 % 1, 10 % 2, 5 % 3).
_QUANTILES = (0.60, 0.85, 0.95)
#: The grade from which an item counts as relevant for MRR.
MRR_GRADE = 2.0
#: The scoring function's weights are drawn once from this seed: the same function every seed.
_FUNCTION_SEED = 20_260_101


def utility(x: Tensor) -> Tensor:
    """The known scoring function of the items' features, ``(..., F) -> (...)``.

    A linear part, an interaction, a saturating and a periodic term, so that a linear model
    cannot fit it exactly.
    """
    w = torch.randn(x.shape[-1], generator=torch.Generator().manual_seed(_FUNCTION_SEED))
    linear = x @ (w / w.norm())
    interaction = 0.8 * x[..., 0] * x[..., 1]
    return linear + interaction - 0.6 * x[..., 2].square() + torch.sin(2 * x[..., 3])


def _queries(n: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """Features, noisy utilities and the validity mask of ``n`` ragged queries."""
    x = torch.randn(n, _SLOTS, _FEATURES, generator=generator)
    noisy = utility(x) + 0.5 * torch.randn(n, _SLOTS, generator=generator)
    lengths = torch.randint(_MIN_ITEMS, _SLOTS + 1, (n, 1), generator=generator)
    mask = torch.arange(_SLOTS) < lengths
    return x * mask[..., None], noisy, mask


def _split(x: Tensor, noisy: Tensor, mask: Tensor, thresholds: Tensor) -> Split:
    grades = torch.bucketize(noisy, thresholds, right=True).float()
    return Split(x, torch.where(mask, grades, torch.full_like(grades, PAD)))


def synthetic_ranking(
    seed: int, *, n_train: int = 300, n_val: int = 60, n_test: int = 150
) -> Dataset:
    """Queries of 8 to 20 items with grades 0..3 from a known function of 12 features.

    Each item's grade buckets ``utility(x) + N(0, 0.5^2)`` at the 60th, 85th and 95th
    percentiles of the training items' values; the splits are independent draws from the seed.
    """
    generator = torch.Generator().manual_seed(seed)
    train = _queries(n_train, generator)
    val = _queries(n_val, generator)
    test = _queries(n_test, generator)
    thresholds = torch.quantile(train[1][train[2]], torch.tensor(_QUANTILES))
    splits = [_split(*part, thresholds) for part in (train, val, test)]
    return Dataset(
        name="synthetic-ranking",
        description=(
            f"{n_train} training queries of {_MIN_ITEMS}-{_SLOTS} items, {_FEATURES} features, "
            "grades 0-3 from a known non-linear function plus noise"
        ),
        train=splits[0],
        val=splits[1],
        test=splits[2],
    )


class ItemScorer(nn.Module):
    """Scores each item of ``(Q, L, F)`` lists on its own with an :class:`MLP`: ``(Q, L)``."""

    def __init__(self, in_features: int, hidden: int = 32) -> None:
        super().__init__()
        self.mlp = MLP(in_features, 1, hidden=hidden)

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp(x.reshape(-1, x.shape[-1])).reshape(x.shape[:-1])


def item_scorer(data: Dataset) -> ItemScorer:
    """An :class:`ItemScorer` for ``data``'s item features."""
    return ItemScorer(int(data.train.x.shape[-1]))


def _listwise(spec: LossSpec, data: Dataset, device: torch.device, **options: Any) -> Any:
    def loss_fn(output: Tensor, target: Tensor) -> Any:
        mask = target != PAD
        return spec.function(output, target.clamp(min=0), mask=mask, **options)

    return loss_fn


def listwise(**options: Any) -> Any:
    """The adapter of a list loss: the padding of the targets becomes its ``mask``."""
    return partial(_listwise, **options)


# --------------------------------------------------------------------------- metrics


def _order(scores: Tensor, mask: Tensor) -> Tensor:
    """Slots by score, highest first, padding last (ties: the lower slot first)."""
    key = torch.where(mask, scores, torch.tensor(-torch.inf))
    return torch.sort(key, dim=1, descending=True, stable=True).indices


def ndcg_at_k(scores: Tensor, grades: Tensor, k: int) -> float:
    """Mean NDCG@k (gains ``2^g - 1``) over the queries with a relevant item.

    ``grades`` holds :data:`PAD` at padding. A query without a positive grade has no NDCG and
    is left out.
    """
    mask = grades != PAD
    gains = torch.where(mask, 2.0 ** grades.clamp(min=0) - 1, torch.zeros_like(grades))
    discount = 1.0 / torch.log2(torch.arange(2, grades.shape[1] + 2, dtype=torch.float64))
    discount[k:] = 0
    dcg = (gains.gather(1, _order(scores, mask)).double() * discount).sum(1)
    ideal = (torch.sort(gains, dim=1, descending=True).values.double() * discount).sum(1)
    has = ideal > 0
    return float((dcg[has] / ideal[has]).mean()) if bool(has.any()) else float("nan")


def mrr(scores: Tensor, grades: Tensor) -> float:
    """Mean reciprocal rank of the first item graded ``>= MRR_GRADE``, over queries with one."""
    mask = grades != PAD
    relevant = (grades >= MRR_GRADE).gather(1, _order(scores, mask))
    has = relevant.any(dim=1)
    first = relevant.float().argmax(dim=1) + 1
    return float((1.0 / first[has].double()).mean()) if bool(has.any()) else float("nan")


@torch.no_grad()
def evaluate_ranking(model: nn.Module, data: Dataset, device: torch.device) -> dict[str, float]:
    """NDCG@10 and MRR of the model's scores on the test queries."""
    model.eval()
    try:
        scores = model(data.test.x.to(device)).float().cpu()
    finally:
        model.train()
    return {"ndcg_at_10": ndcg_at_k(scores, data.test.y, 10), "mrr": mrr(scores, data.test.y)}


def _random_scores(data: Dataset, draws: int = 64) -> list[Tensor]:
    generator = torch.Generator().manual_seed(0)
    return [torch.rand(data.test.y.shape, generator=generator) for _ in range(draws)]


def random_ndcg_at_10(data: Dataset) -> float:
    """NDCG@10 of a random order of each test list (the mean of 64 random draws)."""
    values = [ndcg_at_k(s, data.test.y, 10) for s in _random_scores(data)]
    return sum(values) / len(values)


def random_mrr(data: Dataset) -> float:
    """MRR of a random order of each test list (the mean of 64 random draws)."""
    values = [mrr(s, data.test.y) for s in _random_scores(data)]
    return sum(values) / len(values)
