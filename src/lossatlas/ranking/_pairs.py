"""The shared vocabulary of losses over a batch of labelled embeddings: distances and masks.

A batch of ``N`` embeddings with class labels implies every pair ``(i, j)``, ``i != j``: a
*positive* when the labels agree, a *negative* when they differ. :func:`label_masks` gives both
as ``(N, N)`` bool masks (no loop over the batch), :func:`pair_scores` the ``(N, N)`` matrix of
one of the :data:`Distance` choices, and :func:`check_labels` the one check of the labels.
The losses of :mod:`lossatlas.ranking.supervised` read them from here.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example, Family, TargetKind
from lossatlas._reduction import safe_sqrt
from lossatlas._validation import check_integer, check_shape

__all__ = [
    "LABELLED",
    "Distance",
    "check_labels",
    "is_similarity",
    "label_masks",
    "labelled_embeddings",
    "masked_logsumexp",
    "pair_scores",
]

#: How two embeddings are compared. ``"cosine"`` and ``"dot"`` are similarities (larger is
#: closer), ``"euclidean"`` and ``"squared_euclidean"`` distances (smaller is closer). The
#: embeddings are used as given (PML's ``LpDistance`` L2-normalises them first by default).
Distance = Literal["cosine", "euclidean", "squared_euclidean", "dot"]


def is_similarity(distance: Distance) -> bool:
    """Whether a larger score means closer (``"cosine"``, ``"dot"``)."""
    return distance in ("cosine", "dot")


def pair_scores(x: Tensor, y: Tensor, distance: Distance) -> Tensor:
    """The ``(N, M)`` matrix of ``distance`` between rows of ``x`` ``(N, D)`` and ``y`` ``(M, D)``.

    The Euclidean forms use the exact difference ``x_i - y_j`` (``N x M x D`` memory), so a pair
    of identical rows (the diagonal of ``pair_scores(x, x)``) is exactly 0 with a zero gradient
    (``safe_sqrt``), where the expanded ``|x|^2 + |y|^2 - 2 x.y`` would round to a tiny value
    whose square root has a gradient of ``1e8``. A zero vector normalises to 0 under
    ``"cosine"``.

    Examples:
        >>> import torch
        >>> x = torch.tensor([[3.0, 4.0], [0.0, 1.0]])
        >>> pair_scores(x, x, "euclidean")
        tensor([[0.0000, 4.2426],
                [4.2426, 0.0000]])
        >>> pair_scores(x, x, "cosine")
        tensor([[1.0000, 0.8000],
                [0.8000, 1.0000]])
    """
    if distance == "cosine":
        return F.normalize(x, dim=-1) @ F.normalize(y, dim=-1).T
    if distance == "dot":
        return x @ y.T
    squared = (x[:, None, :] - y[None, :, :]).square().sum(dim=-1)
    return squared if distance == "squared_euclidean" else safe_sqrt(squared)


def label_masks(labels: Tensor) -> tuple[Tensor, Tensor]:
    """The ``(N, N)`` bool masks of positive pairs (same label, ``i != j``) and negative pairs.

    Examples:
        >>> import torch
        >>> positive, negative = label_masks(torch.tensor([0, 0, 1]))
        >>> positive
        tensor([[False,  True, False],
                [ True, False, False],
                [False, False, False]])
        >>> negative
        tensor([[False, False,  True],
                [False, False,  True],
                [ True,  True, False]])
    """
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def check_labels(name: str, labels: Tensor, embeddings_name: str, num: int) -> None:
    """Raise unless ``labels`` is an integer ``(num,)`` tensor: one class per embedding."""
    check_integer(name, labels)
    check_shape(name, labels, (num,), f"(one class per row of {embeddings_name})")


def labelled_embeddings(
    generator: torch.Generator,
    *,
    batch: int,
    dtype: torch.dtype,
    scale: float,
    dim: int = 4,
    num_classes: int = 2,
) -> Example:
    """Example ``(embeddings (N, D), labels (N,))`` with a few classes (so labels repeat)."""
    embeddings = ex.normal(generator, batch, dim, dtype=dtype, scale=scale)
    labels = ex.class_indices(generator, batch, num_classes=num_classes)
    return Example((embeddings, labels), grad_args=(0,))


def masked_logsumexp(x: Tensor, mask: Tensor, *, add_one: bool = False) -> Tensor:
    """Row-wise ``log sum_{j in mask} exp(x_ij)``, 0 (with a zero gradient) for an empty row.

    With ``add_one`` it is ``log(1 + sum ...)``. ``x`` and ``mask`` are ``(N, M)``; returns
    ``(N,)``. This is PML's ``lmu.logsumexp`` (an empty row gives 0 also without ``add_one``),
    without the NaN gradient that ``logsumexp`` of an all ``-inf`` row has.

    Examples:
        >>> import torch
        >>> x = torch.zeros(2, 2)
        >>> masked_logsumexp(x, torch.tensor([[True, True], [False, False]]))
        tensor([0.6931, 0.0000])
    """
    present = mask.any(dim=1, keepdim=True)
    filled = torch.where(mask, x, float("-inf"))
    filled = torch.where(present, filled, torch.zeros_like(filled))
    if add_one:
        filled = torch.cat([filled, filled.new_zeros(filled.shape[0], 1)], dim=1)
    return torch.where(present[:, 0], torch.logsumexp(filled, dim=1), 0.0)


#: What the losses over ``(embeddings, labels)`` share; each family derives its own from it.
LABELLED = Family(
    tasks=("metric-learning",),
    input_kind="embeddings",
    target_kind="class labels (one per embedding)",
    target_type=TargetKind.CLASS_INDICES,
    examples=labelled_embeddings,
    mean_of_none=False,
)
