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
from lossatlas._reduction import compute_dtype, safe_sqrt, upcast
from lossatlas._validation import (
    check_floating,
    check_integer,
    check_same_device,
    check_shape,
)
from lossatlas.distributed import ProcessGroup, active_group, gather_rows, rank

__all__ = [
    "LABELLED",
    "Distance",
    "LabelledBatch",
    "MeanOver",
    "check_embeddings",
    "check_labels",
    "gather_labelled",
    "hardest_pairs",
    "is_similarity",
    "label_masks",
    "labelled_embeddings",
    "masked_logsumexp",
    "oriented_scores",
    "pair_scores",
]

#: How two embeddings are compared. ``"cosine"`` and ``"dot"`` are similarities (larger is
#: closer), ``"euclidean"`` and ``"squared_euclidean"`` distances (smaller is closer). The
#: embeddings are used as given (PML's ``LpDistance`` L2-normalises them first by default).
Distance = Literal["cosine", "euclidean", "squared_euclidean", "dot"]
#: What ``reduction="mean"`` of a mined loss divides by: every mined term, or those with a
#: positive loss (PML's ``AvgNonZeroReducer``).
MeanOver = Literal["all", "nonzero"]

_INF = float("inf")


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


def label_masks(
    labels: Tensor, batch_labels: Tensor | None = None, *, columns: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """The bool masks of positive pairs (same label, not the anchor itself) and negative pairs.

    ``labels`` ``(N,)`` are the anchors' and ``batch_labels`` ``(M,)`` (default ``labels``) the
    batch they are compared with; the masks are ``(N, M)``. Anchor ``i`` is column
    ``columns[i]`` of the batch (default ``i``), which is not its own positive.

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
    other = labels if batch_labels is None else batch_labels
    same = labels[:, None] == other[None, :]
    if columns is None:
        columns = torch.arange(labels.shape[0], device=labels.device)
    own = columns[:, None] == torch.arange(other.shape[0], device=labels.device)[None, :]
    return same & ~own, ~same


def check_labels(name: str, labels: Tensor, embeddings_name: str, num: int) -> None:
    """Raise unless ``labels`` is an integer ``(num,)`` tensor: one class per embedding."""
    check_integer(name, labels)
    check_shape(name, labels, (num,), f"(one class per row of {embeddings_name})")


def check_embeddings(embeddings: Tensor, labels: Tensor, name: str = "embeddings") -> None:
    """The checks of ``(embeddings (N, D), labels (N,))``: floating, 2-D, one label per row."""
    check_same_device((name, embeddings), ("labels", labels))
    check_floating(name, embeddings)
    check_shape(name, embeddings, (None, None), "(N, D)")
    check_labels("labels", labels, name, embeddings.shape[0])


class LabelledBatch:
    """This rank's anchors and the batch they are compared with (every rank's, gathered).

    Attributes:
        x: All embeddings ``(M, ...)``, every rank's rows in rank order (``M = N`` without a
            group); gathered with gradient.
        labels: Their labels ``(M,)``.
        offset: Row of ``x`` where this rank's rows start.
        columns: ``(N,)``: the column of each local anchor in ``x`` (``offset + arange(N)``).
        group: The active group, or ``None``.
    """

    def __init__(
        self, x: Tensor, labels: Tensor, offset: int, local: int, group: ProcessGroup | None
    ) -> None:
        self.x = x
        self.labels = labels
        self.offset = offset
        self.columns = offset + torch.arange(local, device=labels.device)
        self.group = group


def gather_labelled(
    embeddings: Tensor, labels: Tensor, process_group: ProcessGroup | None
) -> LabelledBatch:
    """Every rank's ``(embeddings, labels)`` (with gradient), and where this rank's rows are.

    The local anchors are then scored against the global batch: each rank computes its own
    anchors' terms, and :func:`lossatlas.reduce_loss` with the group sums them and their count
    over the ranks, so the value on every rank and the DDP-averaged gradient are those of one
    process on the concatenated batch (:mod:`lossatlas.distributed`). Without a group (or a
    group of one) it is the local batch itself.
    """
    group = active_group(process_group)
    if group is None:
        return LabelledBatch(embeddings, labels, 0, labels.shape[0], None)
    x, sizes = gather_rows(embeddings, group, name="embeddings")
    all_labels, _ = gather_rows(labels, group, name="labels")
    return LabelledBatch(x, all_labels, sum(sizes[: rank(group)]), labels.shape[0], group)


def oriented_scores(
    embeddings: Tensor, labels: Tensor, distance: Distance, process_group: ProcessGroup | None
) -> tuple[Tensor, Tensor, Tensor, float, LabelledBatch]:
    """``(d, positive, negative, sign, batch)``: this rank's anchors against the (gathered) batch.

    Checks ``(embeddings, labels)``; ``d`` is a distance-like ``(N, M)`` score in the compute
    dtype (a similarity negated, ``sign = -1``; a distance as is, ``sign = 1``), so
    ``d - sign * m`` is PML's ``distance.margin(d, m)`` for both kinds. The masks are
    :func:`label_masks`' and ``batch`` is :func:`gather_labelled`'s.
    """
    check_embeddings(embeddings, labels)
    x = upcast(embeddings, compute_dtype(embeddings))
    batch = gather_labelled(x, labels, process_group)
    sign = -1.0 if is_similarity(distance) else 1.0
    positive, negative = label_masks(labels, batch.labels, columns=batch.columns)
    return sign * pair_scores(x, batch.x, distance), positive, negative, sign, batch


def hardest_pairs(d: Tensor, positive: Tensor, negative: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(formed, farthest positive, nearest negative)`` per anchor row of distances ``d``.

    Batch-hard mining (Hermans et al. 2017; PML's ``BatchHardMiner``).

    ``formed``: the anchor has both; the two distances are 0 where it has not (so they are
    finite with a zero gradient). Ties share the gradient (``amax``/``amin``).
    """
    formed = positive.any(dim=1) & negative.any(dim=1)
    farthest = F.pad(torch.where(positive, d, -_INF), (0, 1), value=-_INF).amax(dim=1)
    nearest = F.pad(torch.where(negative, d, _INF), (0, 1), value=_INF).amin(dim=1)
    zero = torch.zeros_like(farthest)
    return formed, torch.where(formed, farthest, zero), torch.where(formed, nearest, zero)


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
    properties={"non_negative"},
    args={
        "embeddings": "``(N, D)``.",
        "labels": "Class of each embedding, integer ``(N,)``.",
        "distance": '``"euclidean"`` | ``"squared_euclidean"`` | ``"cosine"`` | ``"dot"``; the'
        " embeddings are not normalised for the Euclidean ones (PML's ``LpDistance`` normalises"
        " them by default).",
        "process_group": "``None`` (this process's batch) or a ``torch.distributed`` group: the"
        " embeddings and labels of every rank are gathered with gradient (shards of any size),"
        " each rank's anchors are compared with the whole global batch, and the sums and"
        ' counts of ``"mean"`` are summed over the group, so the value on every rank and the'
        " DDP-averaged gradients are one process's on the concatenated batch (see"
        ' :mod:`lossatlas.distributed`); ``"none"`` gives this rank\'s anchors. The shard sizes'
        " are read on the host (a graph break under ``torch.compile``).",
    },
    returns='``(N,)`` for ``"none"``, else a scalar.',
    raises={
        "TypeError": "Non-floating embeddings, non-integer labels.",
        "ValueError": "``embeddings`` not ``(N, D)``, ``labels`` not ``(N,)``, an unknown choice"
        " of an option (with a suggestion).",
    },
)
