"""The triplet loss from ``(embeddings, labels)``: the triplets are mined from the batch.

Where :func:`lossatlas.triplet_margin_loss` takes ``(anchor, positive, negative)`` rows, this
form takes one batch of labelled embeddings and builds the triplets itself, with the masks of
:mod:`lossatlas.ranking._pairs` (no loop over the batch): every valid triplet (``"all"``), the
hardest positive and negative of each anchor (``"batch_hard"``, Hermans et al. 2017), or for
each positive pair the closest negative that is farther than the positive (``"batch_semi_hard"``,
Schroff et al. 2015).
"""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from lossatlas._module import LossModule
from lossatlas._options import NonNegative
from lossatlas._reduction import Reduction, reduce_loss
from lossatlas.distributed import ProcessGroup
from lossatlas.ranking._pairs import (
    LABELLED,
    Distance,
    MeanOver,
    hardest_pairs,
    oriented_scores,
)

__all__ = ["mined_triplet_loss"]

#: How :func:`mined_triplet_loss` picks its triplets.
Mining = Literal["all", "batch_hard", "batch_semi_hard"]

_INF = float("inf")
_PML = "pytorch-metric-learning"


def _padded(values: Tensor, fill: float) -> Tensor:
    """``values`` with one more ``fill`` column (a reduction over an empty last dim is defined)."""
    return F.pad(values, (0, 1), value=fill)


@LABELLED.derive(tasks=("metric-learning", "ranking")).loss(
    formula=r"\max(0,\ d(a, p) - d(a, n) + m)",
    use_when="triplet training from a labelled batch (mined triplets)",
    peers={
        _PML: "TripletMarginLoss (+ BatchHardMiner); its default reducer "
        'is mean_over="nonzero", margin 0.05, normalised LpDistance'
    },
)
def mined_triplet_loss(
    embeddings: Tensor,
    labels: Tensor,
    *,
    margin: NonNegative = 0.2,
    mining: Mining = "batch_hard",
    distance: Distance = "euclidean",
    mean_over: MeanOver = "all",
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Triplet margin loss over the triplets a labelled batch implies, mined three ways.

    A triplet ``(a, p, n)`` has ``labels[p] == labels[a]``, ``p != a`` and
    ``labels[n] != labels[a]``; it pays how far its positive is from being ``margin`` nearer
    than its negative. With a similarity (``"cosine"``, ``"dot"``) the distance is ``-s``, so
    the term is ``s(a, n) - s(a, p) + m`` (PML's convention).

    * ``"all"``: every valid triplet.
    * ``"batch_hard"`` (Hermans et al.): one triplet per anchor, its farthest positive and its
      nearest negative. On a batch holding exactly one triplet it is
      :func:`lossatlas.triplet_margin_loss` on that triplet.
    * ``"batch_semi_hard"`` (Schroff et al., TensorFlow Addons' ``triplet_semihard_loss``): one
      triplet per positive pair ``(a, p)``, its negative the nearest one that is farther than
      ``p`` (semi-hard); if there is none, the farthest negative.

    An anchor without a positive or a negative forms no triplet and is not counted; a batch
    where no label repeats gives 0 with a zero gradient. ``reduction="mean"`` divides by the
    number of mined triplets (``mean_over="all"``) or by those with a positive loss
    (``"nonzero"``, PML's default ``AvgNonZeroReducer``). The gradient of the hardest
    distances flows to the chosen pair only (ties share it); the mining itself has none.

    .. math::
        \ell_{apn} = \max\big(0,\ d(a, p) - d(a, n) + \mathrm{margin}\big)

    Args:
        margin: ``>= 0`` (FaceNet 0.2; PML's default 0.05, torch's triplet loss 1).
        mining: ``"all"`` | ``"batch_hard"`` | ``"batch_semi_hard"``.
        mean_over: ``"all"`` | ``"nonzero"``: what ``"mean"`` divides by.

    Returns:
        For ``"none"``: ``(N, N, N)`` indexed ``[a, p, n]`` (``"all"``), ``(N,)`` per anchor
        (``"batch_hard"``), ``(N, N)`` per ``[a, p]`` (``"batch_semi_hard"``), 0 where no
        triplet is formed; else a scalar.

    Example:
        >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.5]])
        >>> la.mined_triplet_loss(x, torch.tensor([0, 0, 1]), margin=1.0, reduction="none")
        tensor([0.5000, 0.1972, 0.0000])

        Anchor 0's positive is 1 away, its negative 1.5; anchor 1's positive 1, its negative
        ``sqrt(3.25) = 1.80``; anchor 2 has no positive.

    References:
        F. Schroff, D. Kalenichenko, J. Philbin, "FaceNet: A Unified Embedding for Face
        Recognition and Clustering", CVPR 2015, https://arxiv.org/abs/1503.03832

        A. Hermans, L. Beyer, B. Leibe, "In Defense of the Triplet Loss for Person
        Re-Identification", 2017, https://arxiv.org/abs/1703.07737
    """
    with torch.autocast(embeddings.device.type, enabled=False):
        d, positive, negative, _, _ = oriented_scores(embeddings, labels, distance, process_group)
        has_negative = negative.any(dim=1)
        if mining == "all":
            formed = positive[:, :, None] & negative[:, None, :]
            violation = d[:, :, None] - d[:, None, :] + margin
        elif mining == "batch_hard":
            formed, farthest, nearest = hardest_pairs(d, positive, negative)
            violation = farthest - nearest + margin
        else:
            formed = positive & has_negative[:, None]
            # [a, p, n]: is n a negative of a farther than p?
            farther = negative[:, None, :] & (d[:, None, :] > d[:, :, None])
            outside = _padded(torch.where(farther, d[:, None, :], _INF), _INF).amin(dim=2)
            inside = _padded(torch.where(negative, d, -_INF), -_INF).amax(dim=1)
            chosen = torch.where(farther.any(dim=2), outside, inside[:, None])
            chosen = torch.where(formed, chosen, torch.zeros_like(chosen))
            violation = d - chosen + margin
        loss = torch.where(formed, F.relu(violation), torch.zeros_like(violation))
    if reduction == "none":
        return loss
    counted = formed & (loss > 0) if mean_over == "nonzero" else formed
    return reduce_loss(loss, reduction, denominator=counted.sum(), process_group=process_group)


class MinedTripletLoss(LossModule, functional=mined_triplet_loss):
    """Module form of :func:`lossatlas.mined_triplet_loss`."""
