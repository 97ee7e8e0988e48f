"""Metric-learning losses over a batch of labelled embeddings, pairs taken from the labels.

SupCon, multi-similarity, circle, lifted structure, N-pair and the mined contrastive loss.

Each takes ``(embeddings, labels)``: every pair of rows with the same label is a positive, every
pair with different labels a negative (the masks of :mod:`lossatlas.ranking._pairs`). An anchor
whose batch holds no positive (or, where the loss needs one, no negative) contributes 0 and is
not counted by ``"mean"``; a batch in which no label repeats gives 0 with a zero gradient.
"""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example
from lossatlas._module import LossModule
from lossatlas._options import NonNegative, Positive
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, upcast
from lossatlas._validation import check_floating, check_same_device
from lossatlas.distributed import ProcessGroup, gather_rows
from lossatlas.ranking._pairs import (
    LABELLED,
    Distance,
    MeanOver,
    check_embeddings,
    check_labels,
    gather_labelled,
    hardest_pairs,
    is_similarity,
    label_masks,
    masked_logsumexp,
    oriented_scores,
    pair_scores,
)

__all__ = [
    "circle_loss",
    "lifted_structure_loss",
    "mined_contrastive_loss",
    "multi_similarity_loss",
    "npair_loss",
    "supcon_loss",
]

#: Which views of each sample are anchors in :func:`supcon_loss`.
ContrastMode = Literal["all", "one"]
#: How :func:`mined_contrastive_loss` picks its pairs.
PairMining = Literal["all", "batch_hard"]

_PML = "pytorch-metric-learning"


def _multi_view(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    features = ex.normal(generator, batch, 2, 4, dtype=dtype, scale=scale)
    labels = ex.class_indices(generator, batch, num_classes=2)
    return Example((features, labels), grad_args=(0,))


# --------------------------------------------------------------------------- SupCon


@LABELLED.loss(
    formula=r"-\frac{1}{|P(i)|} \sum_{p \in P(i)} \log \frac{e^{z_i \cdot z_p / t}}"
    r"{\sum_{a \ne i} e^{z_i \cdot z_a / t}}",
    examples=_multi_view,
    twice_differentiable=True,
    use_when="supervised contrastive pre-training with class labels",
    peers={_PML: "SupConLoss on (N*V, D) with labels repeated; default temperature 0.1"},
)
def supcon_loss(
    features: Tensor,
    labels: Tensor,
    *,
    temperature: Positive = 0.07,
    contrast_mode: ContrastMode = "all",
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Supervised contrastive loss (SupCon): pull every same-class view towards the anchor.

    Each of the ``V`` views of the ``N`` samples is L2-normalised; an anchor (every view with
    ``contrast_mode="all"``, the first view of each sample with ``"one"``) is contrasted with
    all ``N V`` views but itself. Its positives ``P(i)`` are the other views of the same label
    (its own other views included), and its loss is the mean over ``P(i)`` of the
    log-probability of picking that positive. With one positive per anchor (``V = 2`` and no
    repeated label, ``"all"``) this is SimCLR's NT-Xent; with ``V = 1`` the positives are the
    other samples of the class.

    An anchor without a positive contributes 0 and is **not counted** by ``"mean"`` (the
    reference implementation divides by ``|P(i)| = 0`` and returns NaN); a batch where no label
    repeats and ``V = 1`` gives 0 with a zero gradient. The logits are cosines over
    ``temperature``, bounded by ``1 / t``, so ``t = 0.01`` is finite. Its minimum for a batch,
    reached when all views of a class coincide and classes are opposite, is
    ``log |P(i)|`` per anchor plus a term that vanishes as ``t -> 0``.

    .. math::
        \ell_i = -\frac{1}{|P(i)|} \sum_{p \in P(i)}
                 \log \frac{e^{\hat z_i \cdot \hat z_p / t}}{\sum_{a \ne i} e^{\hat z_i \cdot
                 \hat z_a / t}}

    Differences from the reference code (HobbitLong/SupContrast): no ``base_temperature``
    factor (theirs is ``t / base_t``, 1 at their defaults); no NaN for anchors without a
    positive. pytorch-metric-learning's ``SupConLoss`` takes ``(N V, D)`` rows with repeated
    labels, equal here (its ``AvgNonZeroReducer`` averages the anchors with a positive) for
    ``contrast_mode="all"``; its default temperature is 0.1.

    Args:
        features: Embeddings ``(N, V, D)`` (``V`` views per sample) or ``(N, D)`` (one view).
        labels: Class of each sample, integer ``(N,)``.
        temperature: Positive real (the paper uses 0.1; 0.07 as SupContrast's default).
        contrast_mode: ``"all"`` (every view is an anchor) or ``"one"`` (the first view only).
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of
            anchors that have a positive.

    Returns:
        For ``"none"``: ``(N, V)`` (``"all"``) or ``(N,)`` (``"one"``, or ``(N, D)`` input),
        0 for anchors without a positive; else a scalar.

    Raises:
        TypeError: Non-floating features, non-integer labels.
        ValueError: ``features`` not ``(N, D)`` or ``(N, V, D)``, ``labels`` not ``(N,)``.

    Example:
        >>> features = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
        >>> la.supcon_loss(features, torch.tensor([0, 0, 1]), temperature=1.0)
        tensor(0.3133)

        Two equal embeddings of class 0 (each the other's positive, at cosine 1; the class-1
        row at cosine 0), so each pays ``-log(e / (e + 1))``; the class-1 row has no
        positive and is not counted.

    References:
        P. Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020,
        https://arxiv.org/abs/2004.11362
    """
    check_same_device(("features", features), ("labels", labels))
    check_floating("features", features)
    if features.dim() not in (2, 3):
        raise ValueError(
            f"features must have shape (N, D) or (N, V, D), got {tuple(features.shape)}"
        )
    check_labels("labels", labels, "features", features.shape[0])
    single = features.dim() == 2
    dtype = compute_dtype(features)
    views = upcast(features, dtype)
    if single:
        views = views[:, None, :]
    n, v, dim = views.shape
    with torch.autocast(views.device.type, enabled=False):
        batch = gather_labelled(views, labels, process_group)
        m = batch.x.shape[0]
        # View-major rows (view 0 of every sample, then view 1...); local anchor (view u,
        # sample i) is row u * M + offset + i of the contrast.
        contrast = F.normalize(batch.x, dim=-1).transpose(0, 1).reshape(m * v, dim)
        anchors = F.normalize(views, dim=-1).transpose(0, 1).reshape(n * v, dim)
        columns = (torch.arange(v, device=labels.device)[:, None] * m + batch.columns).flatten()
        anchor_labels = labels.repeat(v)
        if contrast_mode == "one":
            anchors, columns, anchor_labels = anchors[:n], columns[:n], labels
        positive, _ = label_masks(anchor_labels, batch.labels.repeat(v), columns=columns)
        others = columns[:, None] != torch.arange(m * v, device=labels.device)[None, :]
        logits = anchors @ contrast.T / temperature
        log_prob = logits - masked_logsumexp(logits, others)[:, None]
        count = positive.sum(dim=1)
        picked = torch.where(positive, log_prob, torch.zeros_like(log_prob)).sum(dim=1)
        loss = -picked / count.clamp_min(1)
    has_positive = count > 0
    if reduction == "none":
        return loss if contrast_mode == "one" or single else loss.reshape(v, n).T
    return reduce_loss(loss, reduction, denominator=has_positive.sum(), process_group=process_group)


class SupConLoss(LossModule, functional=supcon_loss):
    """Module form of :func:`lossatlas.supcon_loss`."""


# --------------------------------------------------------------------------- multi-similarity


@LABELLED.loss(
    formula=r"\frac{1}{\alpha} \log(1 + \sum_{P_i} e^{-\alpha (S_{ij} - \lambda)}) + "
    r"\frac{1}{\beta} \log(1 + \sum_{N_i} e^{\beta (S_{ik} - \lambda)})",
    mean_of_none=True,
    use_when="deep metric learning with mined pairs (retrieval)",
    peers={
        _PML: "MultiSimilarityLoss + MultiSimilarityMiner(epsilon); epsilon=None is the loss "
        "without a miner; its LpDistance normalises embeddings"
    },
)
def multi_similarity_loss(
    embeddings: Tensor,
    labels: Tensor,
    *,
    alpha: Positive = 2.0,
    beta: Positive = 50.0,
    base: float = 0.5,
    epsilon: NonNegative | None = 0.1,
    distance: Distance = "cosine",
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Multi-similarity loss with its pair mining (Wang et al. 2019).

    For anchor ``i`` with similarities ``S_ij`` (cosine by default), the mining step keeps a
    positive ``j`` only if ``S_ij - epsilon`` is below the anchor's hardest negative
    similarity, and a negative ``k`` only if ``S_ik + epsilon`` exceeds its hardest positive
    (``epsilon=None`` keeps every pair: PML's loss without a miner). The kept pairs are then
    weighted by a soft-plus over their similarities to the threshold ``base`` (the paper's
    ``lambda``). The mining masks carry no gradient.

    With a distance (``"euclidean"``, ``"squared_euclidean"``) every comparison flips, as in
    PML: ``d - base`` on positives, ``base - d`` on negatives, a positive is kept if
    ``d + epsilon`` exceeds the anchor's closest negative. Unlike PML's ``LpDistance``, the
    embeddings are not normalised first.

    .. math::
        \ell_i = \frac{1}{\alpha} \log\Big(1 + \sum_{j \in P_i} e^{-\alpha (S_{ij} - \lambda)}
        \Big) + \frac{1}{\beta} \log\Big(1 + \sum_{k \in N_i} e^{\beta (S_{ik} - \lambda)}\Big)

    An anchor with no kept pair contributes 0 and ``"mean"`` divides by the batch size (PML's
    ``MeanReducer``), so ``"mean"`` is the mean of ``"none"``.

    Args:
        alpha: Positive scale of the positive term (paper 2).
        beta: Positive scale of the negative term (paper 50).
        base: The similarity threshold ``lambda`` (paper 0.5).
        epsilon: Mining margin, ``>= 0`` (paper 0.1), or ``None`` for no mining.
        distance: ``"cosine"`` | ``"dot"`` | ``"euclidean"`` | ``"squared_euclidean"``.

    Example:
        >>> x = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
        >>> # row 0's pairs are easy (mined away), row 2 has no positive
        >>> la.multi_similarity_loss(x, torch.tensor([0, 0, 1]), reduction="none")
        tensor([0.0000, 0.5991, 0.0000])

    References:
        X. Wang, X. Han, W. Huang, D. Dong, M. R. Scott, "Multi-Similarity Loss with General
        Pair Weighting for Deep Metric Learning", CVPR 2019, https://arxiv.org/abs/1904.06627
    """
    with torch.autocast(embeddings.device.type, enabled=False):
        d, positive, negative, sign, _ = oriented_scores(
            embeddings, labels, distance, process_group
        )
        s, threshold = -d, -sign * base  # larger is closer
        if epsilon is not None:
            detached = s.detach()
            # One padding column each, so an empty batch reduces over a non-empty dim.
            hardest_negative = F.pad(
                torch.where(negative, detached, float("-inf")), (0, 1), value=float("-inf")
            ).amax(dim=1)
            hardest_positive = F.pad(
                torch.where(positive, detached, float("inf")), (0, 1), value=float("inf")
            ).amin(dim=1)
            # A NaN similarity keeps its pair, so a diverged embedding shows in the loss.
            nan = detached.isnan()
            positive = positive & ((detached - epsilon < hardest_negative[:, None]) | nan)
            negative = negative & ((detached + epsilon > hardest_positive[:, None]) | nan)
        pos = masked_logsumexp(-alpha * (s - threshold), positive, add_one=True) / alpha
        neg = masked_logsumexp(beta * (s - threshold), negative, add_one=True) / beta
    return reduce_loss(pos + neg, reduction, process_group=process_group)


class MultiSimilarityLoss(LossModule, functional=multi_similarity_loss):
    """Module form of :func:`lossatlas.multi_similarity_loss`."""


# --------------------------------------------------------------------------- circle


@LABELLED.loss(
    formula=r"\log\big(1 + \sum_{N_i} e^{\gamma a_n (s_n - m)} \sum_{P_i} "
    r"e^{-\gamma a_p (s_p - 1 + m)}\big)",
    exact_gradient=False,
    use_when="pair-based metric learning with self-paced weights",
    peers={_PML: "CircleLoss; defaults m=0.4, gamma=80 there"},
)
def circle_loss(
    embeddings: Tensor,
    labels: Tensor,
    *,
    margin: NonNegative = 0.25,
    gamma: Positive = 256.0,
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Circle loss (Sun et al. 2020), pair form: self-paced weights on cosine similarities.

    For anchor ``i`` with positive cosines ``s_p`` and negative cosines ``s_n``, each
    similarity is weighted by how far it is from its optimum: ``a_p = [1 + m - s_p]_+`` and
    ``a_n = [s_n + m]_+``. As in the paper's and PML's code the weights are constants for the
    gradient (detached), so autograd's gradient is the paper's, not the derivative of the
    value. The decision margins are ``1 - m`` and ``m``.

    Computed as ``softplus(logsumexp_n + logsumexp_p)``, never as a product of exponentials,
    so the paper's face-recognition setting ``m = 0.25, gamma = 256`` stays finite and does
    not round to 0 in float32. An anchor without a positive or without a negative contributes
    0 and is not counted by ``"mean"`` (PML's ``AvgNonZeroReducer`` gives the same unless a
    loss underflows to exactly 0).

    .. math::
        \ell_i = \log\Big(1 + \sum_{n \in N_i} e^{\gamma a_n (s_n - m)}
                 \sum_{p \in P_i} e^{-\gamma a_p (s_p - 1 + m)}\Big)

    Args:
        embeddings: ``(N, D)``; compared by cosine.
        margin: Relaxation ``m >= 0`` (paper 0.25 for faces, 0.4 for fine-grained retrieval).
        gamma: Positive scale (paper 256 for faces, 80 for fine-grained retrieval).
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of
            anchors with both a positive and a negative.

    Example:
        >>> x = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
        >>> la.circle_loss(x, torch.tensor([0, 0, 1]), margin=0.25, gamma=8.0)
        tensor(3.1237)

    References:
        Y. Sun et al., "Circle Loss: A Unified Perspective of Pair Similarity Optimization",
        CVPR 2020, https://arxiv.org/abs/2002.10857
    """
    with torch.autocast(embeddings.device.type, enabled=False):
        d, positive, negative, _, _ = oriented_scores(embeddings, labels, "cosine", process_group)
        s = -d
        detached = s.detach()
        pos_logits = -gamma * F.relu(1.0 + margin - detached) * (s - (1.0 - margin))
        neg_logits = gamma * F.relu(detached + margin) * (s - margin)
        both = positive.any(dim=1) & negative.any(dim=1)
        lse = masked_logsumexp(pos_logits, positive) + masked_logsumexp(neg_logits, negative)
        loss = torch.where(both, F.softplus(lse), torch.zeros_like(lse))
    return reduce_loss(loss, reduction, denominator=both.sum(), process_group=process_group)


class CircleLoss(LossModule, functional=circle_loss):
    """Module form of :func:`lossatlas.circle_loss`."""


# --------------------------------------------------------------------------- lifted structure


@LABELLED.loss(
    formula=r"\frac{1}{2|P|} \sum_{(i, j) \in P} \max\big(0,\ \log(\sum_{k \in N_i} "
    r"e^{m_n - d_{ik}} + \sum_{l \in N_j} e^{m_n - d_{jl}}) + d_{ij} - m_p\big)^2",
    use_when="metric learning from every pair of a labelled batch (smooth hardest negative)",
    peers={
        _PML: "LiftedStructureLoss (not GeneralizedLiftedStructureLoss); its LpDistance "
        "normalises embeddings"
    },
)
def lifted_structure_loss(
    embeddings: Tensor,
    labels: Tensor,
    *,
    pos_margin: float = 0.0,
    neg_margin: float = 1.0,
    distance: Distance = "euclidean",
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Lifted structured loss (Oh Song et al. 2016): each positive pair against all negatives.

    Every ordered positive pair ``(i, j)`` (same label, ``i != j``) pays the squared hinge of
    its distance plus a soft maximum (log-sum-exp) of how far the negatives of *both* ``i``
    and ``j`` fall inside ``neg_margin``; the sum runs over all negatives of the batch, so no
    mining step is needed. ``pos_margin`` (0 in the paper) is a distance below which a
    positive pair pays nothing more. With a similarity (``"cosine"``, ``"dot"``) the terms
    are ``m_p - s_ij`` and ``s_ik - m_n`` (PML's convention), so the margins are similarity
    levels: ``pos_margin`` the one positives should exceed, ``neg_margin`` the one negatives
    should stay below.

    This is PML's ``LiftedStructureLoss`` (the paper's loss): the mean over ordered pairs of
    ``max(0, J)^2 / 2`` equals the paper's ``1/(2|P|)`` sum over unordered pairs. Not PML's
    ``GeneralizedLiftedStructureLoss`` (Hermans et al.'s per-anchor form). Unlike PML's
    default ``LpDistance``, the embeddings are not normalised first. A batch without a
    positive or a negative pair gives 0 with a zero gradient.

    .. math::
        J_{ij} = \log\Big(\sum_{k \in N_i} e^{m_n - d_{ik}} + \sum_{l \in N_j}
        e^{m_n - d_{jl}}\Big) + d_{ij} - m_p, \qquad
        \ell = \frac{1}{|P|} \sum_{(i, j) \in P} \tfrac12 \max(0, J_{ij})^2

    Args:
        pos_margin: ``m_p`` (paper and PML 0).
        neg_margin: ``m_n``, the paper's ``alpha`` (paper and PML 1).
        distance: ``"euclidean"`` (the paper's) | ``"squared_euclidean"`` | ``"cosine"`` |
            ``"dot"``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of
            ordered positive pairs.

    Returns:
        For ``"none"``: ``(N, N)`` indexed ``[i, j]``, ``max(0, J_ij)^2 / 2`` at the positive
        pairs and 0 elsewhere; else a scalar.

    Example:
        >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
        >>> la.lifted_structure_loss(x, torch.tensor([0, 0, 1]))
        tensor(1.1360)

        The positive pair is 1 apart; its two rows have one negative each, at distance 1 and
        ``sqrt(2)``, so ``J = log(e^0 + e^{1 - 1.414}) + 1 = 1.507`` and the loss is
        ``J^2 / 2`` (both orders of the pair).

    References:
        H. Oh Song, Y. Xiang, S. Jegelka, S. Savarese, "Deep Metric Learning via Lifted
        Structured Feature Embedding", CVPR 2016, https://arxiv.org/abs/1511.06452
    """
    with torch.autocast(embeddings.device.type, enabled=False):
        d, positive, negative, sign, batch = oriented_scores(
            embeddings, labels, distance, process_group
        )
        # Each row's log-sum-exp over its negatives; the positive's row comes from its rank.
        own = masked_logsumexp(sign * neg_margin - d, negative)
        every, _ = gather_rows(own, batch.group, name="embeddings")
        j = torch.logaddexp(own[:, None], every[None, :]) + d - sign * pos_margin
        formed = positive & negative.any(dim=1, keepdim=True)
        loss = torch.where(formed, 0.5 * F.relu(j).square(), torch.zeros_like(j))
    if reduction == "none":
        return loss
    return reduce_loss(loss, reduction, denominator=formed.sum(), process_group=process_group)


class LiftedStructureLoss(LossModule, functional=lifted_structure_loss):
    """Module form of :func:`lossatlas.lifted_structure_loss`."""


# --------------------------------------------------------------------------- N-pair


@LABELLED.loss(
    formula=r"\log\big(1 + \sum_{j \ne i} e^{f_i \cdot f_j^+ - f_i \cdot f_i^+}\big)",
    twice_differentiable=True,
    use_when="one (anchor, positive) pair per class, the other classes' positives as negatives",
    peers={
        _PML: 'NPairsLoss: its default DotProductSimilarity normalises (distance="cosine" '
        "here); no embedding_regularizer"
    },
)
def npair_loss(
    embeddings: Tensor,
    labels: Tensor,
    *,
    distance: Distance = "dot",
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Multi-class N-pair loss (Sohn 2016): each class's anchor picks its positive among all.

    The batch is read as PML's ``NPairsLoss`` reads it: for every class with at least two
    samples, **its first sample in batch order is the anchor and its second the positive**
    (with ``process_group``, in the concatenated batch, rank order); further samples of the
    class are not used. Anchor ``i`` is then classified over the
    ``P`` positives (softmax over ``f_i . f_j^+``), its own positive the target: the paper's
    ``log(1 + sum_{j != i} exp(f_i . f_j^+ - f_i . f_i^+))``. With a distance the logits are
    ``-d`` (PML's convention). A batch where no class has two samples gives 0 with a zero
    gradient; a single class gives 0 (its anchor has no negative).

    .. math::
        \ell_i = -\log \frac{e^{s(f_i, f_i^+)}}{\sum_{j=1}^{P} e^{s(f_i, f_j^+)}}
        = \log\Big(1 + \sum_{j \ne i} e^{s(f_i, f_j^+) - s(f_i, f_i^+)}\Big)

    The default ``"dot"`` is the paper's unnormalised inner product; PML's default
    ``DotProductSimilarity`` normalises the embeddings first, which is ``"cosine"`` here. The
    paper adds an L2 penalty on the embeddings (PML's optional ``embedding_regularizer``); add
    it separately (e.g. ``1e-3 * x.square().sum(1).mean()``).

    Args:
        distance: ``"dot"`` (paper, PML) | ``"cosine"`` | ``"euclidean"`` |
            ``"squared_euclidean"``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of
            anchors (classes with two samples).

    Returns:
        For ``"none"``: ``(N,)``, each anchor's loss at its row, 0 elsewhere; else a scalar.

    Example:
        >>> x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 1.0]])
        >>> la.npair_loss(x, torch.tensor([0, 0, 1, 1, 1]), reduction="none")  # log(1 + e^-1)
        tensor([0.3133, 0.0000, 0.3133, 0.0000, 0.0000])

        Anchors 0 (class 0, positive 1) and 2 (class 1, positive 3); row 4 is unused.

    References:
        K. Sohn, "Improved Deep Metric Learning with Multi-class N-pair Loss Objective",
        NeurIPS 2016,
        https://papers.nips.cc/paper/6200-improved-deep-metric-learning-with-multi-class-n-pair-loss-objective
    """
    check_embeddings(embeddings, labels)
    dtype = compute_dtype(embeddings)
    x = upcast(embeddings, dtype)
    with torch.autocast(x.device.type, enabled=False):
        batch = gather_labelled(x, labels, process_group)
        everyone = batch.labels
        index = torch.arange(everyone.shape[0], device=labels.device)
        same = everyone[:, None] == everyone[None, :]
        occurrence = (same & (index[None, :] < index[:, None])).sum(dim=1)  # 0: first, 1: second
        second = occurrence == 1  # the positives (one per class with two samples)
        has_pair = (same & second[None, :]).any(dim=1)
        anchor = ((occurrence == 0) & has_pair)[batch.columns]
        scores = pair_scores(x, batch.x, distance)
        logits = scores if is_similarity(distance) else -scores
        target = (labels[:, None] == everyone[None, :]) & second[None, :]
        own = torch.where(target, logits, torch.zeros_like(logits)).sum(dim=1)
        candidates = anchor[:, None] & second[None, :]
        loss = torch.where(anchor, masked_logsumexp(logits, candidates) - own, 0.0)
    return reduce_loss(loss, reduction, denominator=anchor.sum(), process_group=process_group)


class NPairLoss(LossModule, functional=npair_loss):
    """Module form of :func:`lossatlas.npair_loss`."""


# --------------------------------------------------------------------------- mined contrastive


@LABELLED.loss(
    formula=r"[d_{ij} - m_p]_+ \text{ (positives)},\ [m_n - d_{ij}]_+ \text{ (negatives)}",
    use_when="contrastive (siamese) training from a labelled batch, every pair or the hardest",
    peers={
        _PML: "ContrastiveLoss (+ BatchHardMiner); its default reducer is "
        'mean_over="nonzero", its LpDistance normalises embeddings'
    },
)
def mined_contrastive_loss(
    embeddings: Tensor,
    labels: Tensor,
    *,
    pos_margin: float = 0.0,
    neg_margin: float = 1.0,
    mining: PairMining = "all",
    distance: Distance = "euclidean",
    mean_over: MeanOver = "all",
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Contrastive loss over the pairs a labelled batch implies (PML's ``ContrastiveLoss``).

    Where :func:`lossatlas.contrastive_loss` takes ``(x1, x2, same)`` pairs, this form takes
    one batch of labelled embeddings: every ordered pair ``(i, j)``, ``i != j``, is a positive
    (same label) or a negative. A positive pays how far its distance exceeds ``pos_margin``,
    a negative how far it falls short of ``neg_margin`` (hinges, not squared: PML's form;
    Hadsell et al.'s squared halves are :func:`lossatlas.contrastive_loss`). With a similarity
    (``"cosine"``, ``"dot"``) the terms are ``[m_p - s]_+`` and ``[s - m_n]_+`` (PML's
    convention): for cosine pass e.g. ``pos_margin=1, neg_margin=0``.

    * ``"all"``: every ordered pair.
    * ``"batch_hard"``: per anchor with a positive and a negative, its farthest positive and
      its nearest negative (PML's ``BatchHardMiner``).

    ``"mean"`` is PML's: **the mean over the positive pairs plus the mean over the negative
    pairs** (two sub-losses), each over all of its pairs (``mean_over="all"``, PML's
    ``MeanReducer``) or over those with a positive loss (``"nonzero"``, PML's default
    ``AvgNonZeroReducer``); a part without pairs adds 0. ``"sum"`` adds every term. A batch
    with one label or with no repeated label still has its negatives (or positives): only
    their part is non-zero.

    .. math::
        \ell = \frac{1}{|P|} \sum_{(i, j) \in P} [d_{ij} - m_p]_+
             + \frac{1}{|N|} \sum_{(i, j) \in N} [m_n - d_{ij}]_+

    Args:
        pos_margin: ``m_p`` (PML 0).
        neg_margin: ``m_n`` (PML 1).
        mining: ``"all"`` | ``"batch_hard"``.
        mean_over: ``"all"`` | ``"nonzero"``: what each part of ``"mean"`` divides by.

    Returns:
        For ``"none"``: ``(N, N)`` per ordered pair ``[i, j]`` (``"all"``; 0 on the diagonal)
        or ``(N,)`` per anchor, its positive plus its negative term (``"batch_hard"``);
        else a scalar.

    Example:
        >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
        >>> la.mined_contrastive_loss(x, torch.tensor([0, 0, 1]), neg_margin=1.2)
        tensor(1.1000)

        The positive pair is 1 apart (each order pays 1); of the four ordered negatives two
        are 1 apart (pay 0.2) and two ``sqrt(2)`` (pay 0), so ``1 + 0.4 / 4``.

    References:
        R. Hadsell, S. Chopra, Y. LeCun, "Dimensionality Reduction by Learning an Invariant
        Mapping", CVPR 2006, https://doi.org/10.1109/CVPR.2006.100

        K. Musgrave, S. Belongie, S.-N. Lim, "A Metric Learning Reality Check", ECCV 2020,
        https://arxiv.org/abs/2003.08505 (pytorch-metric-learning's ``ContrastiveLoss``)
    """
    with torch.autocast(embeddings.device.type, enabled=False):
        d, positive, negative, sign, _ = oriented_scores(
            embeddings, labels, distance, process_group
        )
        if mining == "batch_hard":
            formed, d_pos, d_neg = hardest_pairs(d, positive, negative)
            positive, negative = formed, formed
        else:
            d_pos = d_neg = d
        pos = torch.where(positive, F.relu(d_pos - sign * pos_margin), 0.0)
        neg = torch.where(negative, F.relu(sign * neg_margin - d_neg), 0.0)
    if reduction == "none":
        return pos + neg
    if reduction == "sum":
        return reduce_loss(pos + neg, "sum", process_group=process_group)
    if mean_over == "nonzero":
        positive, negative = positive & (pos > 0), negative & (neg > 0)
    parts = [
        reduce_loss(part, "mean", denominator=mask.sum(), process_group=process_group)
        for part, mask in ((pos, positive), (neg, negative))
    ]
    return parts[0] + parts[1]


class MinedContrastiveLoss(LossModule, functional=mined_contrastive_loss):
    """Module form of :func:`lossatlas.mined_contrastive_loss`."""
