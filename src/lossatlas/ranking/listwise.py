"""Learning to rank: pairwise and listwise losses over ``(scores, relevance)`` lists.

Each loss takes the model's ``scores`` and the graded ``relevance`` (``>= 0``; 0 is not
relevant) of shape ``(Q, L)`` -- ``Q`` queries, each with a list of ``L`` slots -- and an
optional bool ``mask`` for ragged lists (``True`` for an item, ``False`` for padding). Padding
never enters a softmax, a pair or an ideal DCG, whatever its score (``-inf`` and NaN included);
a list that is entirely padding gives 0 with a zero gradient and is not counted by ``"mean"``.
``reduction="none"`` gives one value per query.
"""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example, Family, TargetKind
from lossatlas._module import LossModule
from lossatlas._options import Positive, PositiveInt
from lossatlas._reduction import Reduction, reduce_loss, safe_divide
from lossatlas.distributed import ProcessGroup
from lossatlas.ranking._lists import (
    discount,
    masked_log_softmax,
    normalised_gains,
    padded_below,
    pair_mask,
    prepare_lists,
    ranks_by_score,
)

__all__ = [
    "approx_ndcg_loss",
    "lambda_loss",
    "listmle_loss",
    "listnet_loss",
    "ranking_softmax_loss",
    "ranknet_loss",
]

#: How ListNet turns relevance into its target distribution over the list.
ListNetTarget = Literal["softmax", "linear"]
#: The pair weights of :func:`lambda_loss`.
LambdaWeighting = Literal["ndcg2", "lambdarank", "none"]

_LIST = 5
_GRADES = 4


def _lists(generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float) -> Example:
    """Scores ``(batch, 5)``, grades in {0, ..., 3}, ragged lists of 2 to 5 real items."""
    scores = ex.normal(generator, batch, _LIST, dtype=dtype, scale=scale)
    relevance = ex.class_indices(generator, batch, _LIST, num_classes=_GRADES).to(dtype)
    lengths = torch.randint(2, _LIST + 1, (batch, 1), generator=generator)
    mask = torch.arange(_LIST)[None, :] < lengths
    return Example((scores, relevance), {"mask": mask})


_LISTS = Family(
    tasks=("ranking",),
    input_kind="scores",
    target_kind="graded relevance >= 0 (one grade per list slot)",
    target_type=TargetKind.RELEVANCE,
    examples=_lists,
    same_shape=(0, 1),
    mean_of_none=False,
    properties={"non_negative"},
    args={
        "scores": "Model scores ``(Q, L)``.",
        "relevance": "Grades ``(Q, L)``, ``>= 0`` (floating or integer).",
        "mask": "Bool ``(Q, L)``, ``False`` at padding; ``None`` means every slot is an item.",
        "sigma": "Slope of the logistic, positive.",
        "process_group": "``None`` (this process only) or a ``torch.distributed`` group over"
        ' which ``"mean"`` and ``"sum"`` are exact: each query is whole on one rank, the sum'
        " and the denominator are summed over the group (see :mod:`lossatlas.distributed`)."
        ' ``"none"`` stays per local query.',
    },
    returns='``(Q,)`` for ``"none"``, else a scalar.',
    raises={
        "TypeError": "Non-floating scores, bool relevance, a mask that is not bool.",
        "ValueError": "Inputs not ``(Q, L)``, a mask of another shape, a non-finite score or a"
        " negative relevance at a real slot, an option outside its range (such as ``sigma <= 0``"
        " or ``k < 1``) or its choices.",
    },
    example="""
        >>> scores = torch.tensor([[2.0, 1.0, 0.0], [0.5, 1.5, 0.0]])
        >>> relevance = torch.tensor([[2.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    """,
)


def _mean_over(counted: Tensor, dtype: torch.dtype) -> Tensor:
    return counted.to(dtype).sum()


def _pairs_at(s: Tensor, valid: Tensor, pairs: Tensor, k: int | None) -> Tensor:
    """``pairs`` kept where at least one of the two items is in the top ``k`` by score."""
    if k is None:
        return pairs
    top = ranks_by_score(s, valid) <= k
    return pairs & (top[:, :, None] | top[:, None, :])


# --------------------------------------------------------------------------- pairwise


@_LISTS.loss(
    formula=r"\sum_{y_i > y_j} \log(1 + e^{-\sigma (s_i - s_j)})",
    use_when="pairwise preferences within each query's list",
    peers={
        "rax": "pairwise_logistic_loss: same per-pair terms; its mean is also over pairs",
        "allRank": "rankNet: BCE over pairs with y_i > y_j, mean over the batch's pairs",
    },
)
def ranknet_loss(
    scores: Tensor,
    relevance: Tensor,
    *,
    mask: Tensor | None = None,
    sigma: Positive = 1.0,
    k: PositiveInt | None = None,
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""RankNet (Burges et al. 2005): logistic loss on the score gap of every ordered pair.

    Each pair of real items with ``y_i > y_j`` pays ``log(1 + exp(-sigma (s_i - s_j)))``, the
    cross-entropy of the modelled probability ``sigmoid(sigma (s_i - s_j))`` that ``i`` ranks
    above ``j`` against the target 1. Pairs of equal grade are left out, as rax and allRank
    do (Burges's target 1/2 for them would pull their scores together). On a 2-item list with
    ``y_0 > y_1`` it is ``softplus(-(s_0 - s_1))``, the logistic loss on the score difference.

    With ``k`` (RankNet@k), only the pairs with at least one item ranked in the top ``k`` by
    the current scores count (ties by slot; the ranks carry no gradient): the pairs that can
    change the top ``k``, as :func:`lambda_loss`'s ``k`` and allRank's truncation of its pair
    losses (which keeps pairs with both items in the top ``k``).

    .. math::
        \ell_q = \sum_{i, j:\ y_{qi} > y_{qj}} \log\left(1 + e^{-\sigma (s_{qi} - s_{qj})}\right)

    Args:
        k: Keep the pairs with an item in the top ``k`` by score, or ``None`` for all pairs.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. ``"none"`` gives each query's sum over
            its pairs; ``"mean"`` divides the total by the number of (kept) pairs in the batch
            (as rax and allRank do), 0 without pairs.

    Example:
        >>> mask = torch.tensor([[True, True, True], [True, True, False]])
        >>> la.ranknet_loss(scores, relevance, mask=mask, reduction="none")
        tensor([0.7535, 1.3133])

    References:
        C. Burges, T. Shaked, E. Renshaw, A. Lazier, M. Deeds, N. Hamilton, G. Hullender,
        `Learning to Rank using Gradient Descent <https://doi.org/10.1145/1102351.1102363>`_,
        ICML 2005.
    """
    s, y, valid = prepare_lists(scores, relevance, mask)
    pairs = _pairs_at(s, valid, pair_mask(y, valid), k)
    diff = s[:, :, None] - s[:, None, :]
    terms = torch.where(pairs, F.softplus(-sigma * diff), torch.zeros_like(diff))
    loss = terms.sum(dim=(1, 2))
    denominator = pairs.sum().to(s.dtype)
    return reduce_loss(loss, reduction, denominator=denominator, process_group=process_group)


@_LISTS.loss(
    formula=r"\sum_{y_i > y_j} w_{ij} \log_2(1 + e^{-\sigma (s_i - s_j)})",
    use_when="optimise NDCG directly (LambdaRank, NDCG-Loss2)",
    peers={
        "allRank": "lambdaLoss: ndcgLoss2_scheme / lambdaRank_scheme; its k keeps pairs "
        "with both items in the top k, here either",
    },
)
def lambda_loss(
    scores: Tensor,
    relevance: Tensor,
    *,
    mask: Tensor | None = None,
    weighting: LambdaWeighting = "ndcg2",
    k: PositiveInt | None = None,
    sigma: Positive = 1.0,
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""LambdaLoss (Wang et al. 2018): pair losses weighted by what they are worth to NDCG.

    Every pair of real items with ``y_i > y_j`` pays ``w_ij log2(1 + exp(-sigma (s_i -
    s_j)))``. The weights come from the current ranking (items sorted by score, ties by slot;
    ranks ``r`` are 1-based) and the normalised gains ``G_i = (2^{y_i} - 1) / IDCG``, and are
    constants for the gradient:

    * ``"ndcg2"``: NDCG-Loss2, the paper's bound on NDCG,
      ``w_ij = |G_i - G_j| |1/D(|r_i - r_j|) - 1/D(|r_i - r_j| + 1)|``, ``D(r) = log2(1 + r)``;
    * ``"lambdarank"``: LambdaRank's ``|Delta NDCG_ij| = |G_i - G_j| |1/D(r_i) - 1/D(r_j)|``,
      whose gradient is LambdaRank's lambda;
    * ``"none"``: ``w = 1``, RankNet's pair sum divided by ``ln 2``.

    With ``k``, ``IDCG`` is ``IDCG@k`` and only pairs with at least one item ranked in the top
    ``k`` count (the pairs that can change NDCG@k).

    .. math::
        \ell_q = \sum_{i, j:\ y_i > y_j} w_{ij} \log_2\left(1 + e^{-\sigma (s_i - s_j)}\right)

    Args:
        weighting: ``"ndcg2"`` | ``"lambdarank"`` | ``"none"``.
        k: Cut-off of NDCG@k, or ``None`` for the whole list.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. ``"mean"`` divides by the number of
            queries that have at least one pair (a list of equal grades has none), 0 if none.

    Example:
        >>> la.lambda_loss(scores, relevance, reduction="none")
        tensor([0.1576, 0.9517])
        >>> la.lambda_loss(scores, relevance, weighting="lambdarank", reduction="none")
        tensor([0.1838, 0.7888])

    References:
        X. Wang, C. Li, N. Golbandi, M. Bendersky, M. Najork, `The LambdaLoss Framework for
        Ranking Metric Optimization <https://doi.org/10.1145/3269206.3271784>`_, CIKM 2018.

        C. Burges, R. Ragno, Q. Le, `Learning to Rank with Nonsmooth Cost Functions
        <https://papers.nips.cc/paper/2971-learning-to-rank-with-nonsmooth-cost-functions>`_,
        NeurIPS 2006.
    """
    s, y, valid = prepare_lists(scores, relevance, mask)
    pairs = _pairs_at(s, valid, pair_mask(y, valid), k)
    rank = ranks_by_score(s, valid)
    if weighting == "none":
        weight = torch.ones_like(s)[:, :, None].expand_as(pairs)
    else:
        g, _ = normalised_gains(y, k)
        gain_gap = (g[:, :, None] - g[:, None, :]).abs()
        r = rank.to(s.dtype)
        if weighting == "ndcg2":
            gap = (r[:, :, None] - r[:, None, :]).abs().clamp(min=1.0)
            weight = gain_gap * (discount(gap) - discount(gap + 1.0)).abs()
        else:  # lambdarank
            weight = gain_gap * (discount(r)[:, :, None] - discount(r)[:, None, :]).abs()
    diff = s[:, :, None] - s[:, None, :]
    terms = weight * F.softplus(-sigma * diff) / math.log(2.0)
    loss = torch.where(pairs, terms, torch.zeros_like(terms)).sum(dim=(1, 2))
    denominator = _mean_over(pairs.any(dim=(1, 2)), s.dtype)
    return reduce_loss(loss, reduction, denominator=denominator, process_group=process_group)


# --------------------------------------------------------------------------- listwise


@_LISTS.loss(
    formula=r"-\sum_i P_y(i) \log \frac{e^{s_i}}{\sum_j e^{s_j}}",
    use_when="listwise top-one probabilities; simple and strong",
    peers={
        "allRank": "listNet: softmax of the grades as here (target='softmax')",
        "TF-Ranking": "SoftmaxLoss: grades normalised to sum 1 (target='linear')",
    },
)
def listnet_loss(
    scores: Tensor,
    relevance: Tensor,
    *,
    mask: Tensor | None = None,
    target: ListNetTarget = "softmax",
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""ListNet (Cao et al. 2007): cross-entropy between top-one probabilities of the lists.

    The model's top-one distribution is the softmax of the scores over the list's real items;
    the target's is the softmax of the grades (``target="softmax"``, the paper's
    ``phi = exp``) or the grades divided by their sum (``target="linear"``; a list with no
    relevant item then gives 0 and is not counted). With ``target="linear"`` and a one-hot
    relevance this is softmax cross-entropy with the relevant item as the class; with
    ``target="softmax"`` it is always ``cross_entropy(scores, softmax(relevance))`` with
    probability targets.

    .. math::
        \ell_q = -\sum_{i} P_y(i) \log \frac{e^{s_i}}{\sum_j e^{s_j}},\qquad
        P_y(i) = \frac{e^{y_i}}{\sum_j e^{y_j}} \ \text{or}\ \frac{y_i}{\sum_j y_j}

    Args:
        target: ``"softmax"`` | ``"linear"``: how grades become the target distribution.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. ``"mean"`` divides by the number of
            queries with a target distribution (at least one item; for ``"linear"`` a positive
            grade), 0 if none.

    Example:
        >>> la.listnet_loss(scores, relevance, reduction="none")
        tensor([0.8324, 1.3584])
        >>> la.listnet_loss(scores, relevance, target="linear", reduction="none")
        tensor([0.7409, 1.4644])

    References:
        Z. Cao, T. Qin, T.-Y. Liu, M.-F. Tsai, H. Li, `Learning to Rank: From Pairwise Approach
        to Listwise Approach <https://doi.org/10.1145/1273496.1273513>`_, ICML 2007.
    """
    s, y, valid = prepare_lists(scores, relevance, mask)
    log_p = masked_log_softmax(s, valid)
    if target == "softmax":
        probs = torch.where(valid, masked_log_softmax(y, valid).exp(), torch.zeros_like(y))
        counted = valid.any(dim=1)
    else:
        total = y.sum(dim=1, keepdim=True)
        probs = safe_divide(y, total)
        counted = total[:, 0] > 0
    loss = -(probs * log_p).sum(dim=1)
    denominator = _mean_over(counted, s.dtype)
    return reduce_loss(loss, reduction, denominator=denominator, process_group=process_group)


@_LISTS.loss(
    formula=r"-\sum_{i \le k} \left(s_{\pi_i} - \log \sum_{j \ge i} e^{s_{\pi_j}}\right)",
    use_when="likelihood of the ideal permutation (Plackett-Luce)",
    peers={"allRank": "listMLE: ties shuffled at random; here broken by slot"},
)
def listmle_loss(
    scores: Tensor,
    relevance: Tensor,
    *,
    mask: Tensor | None = None,
    k: PositiveInt | None = None,
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""ListMLE (Xia et al. 2008): negative Plackett-Luce log-likelihood of the ideal order.

    ``pi`` sorts each list's real items by relevance, highest first; **ties are broken by
    slot: of two items with the same grade the one in the lower slot comes first**, so the
    loss is a deterministic function of its inputs (allRank shuffles ties at random). Step
    ``i`` of the permutation pays the log-probability that ``pi_i`` is chosen first among the
    items not yet placed. With ``k``, only the first ``k`` steps count (top-k ListMLE, Xia et
    al. 2009). A list with one item gives 0.

    .. math::
        \ell_q = -\sum_{i=1}^{\min(k, n)} \left(s_{\pi_i}
                 - \log \sum_{j=i}^{n} e^{s_{\pi_j}}\right)

    Args:
        k: Number of top positions of the permutation that count, or ``None`` for all.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. ``"mean"`` divides by the number of
            queries with at least one item, 0 if none.

    Example:
        >>> la.listmle_loss(scores, relevance, reduction="none")
        tensor([0.7209, 1.6658])

    References:
        F. Xia, T.-Y. Liu, J. Wang, W. Zhang, H. Li, `Listwise Approach to Learning to Rank:
        Theory and Algorithm <https://doi.org/10.1145/1390156.1390306>`_, ICML 2008.

        F. Xia, T.-Y. Liu, H. Li, `Statistical Consistency of Top-k Ranking
        <https://papers.nips.cc/paper/3702-statistical-consistency-of-top-k-ranking>`_,
        NeurIPS 2009.
    """
    s, y, valid = prepare_lists(scores, relevance, mask)
    key = torch.where(valid, y, -torch.inf)
    order = torch.sort(key, dim=1, descending=True, stable=True).indices
    placed = valid.gather(1, order)
    ordered = padded_below(s, valid).gather(1, order)
    remaining = torch.logcumsumexp(ordered.flip(1), dim=1).flip(1)
    steps = placed
    if k is not None:
        steps = steps & (torch.arange(s.shape[1], device=s.device) < k)
    terms = torch.where(steps, remaining - ordered, torch.zeros_like(ordered))
    loss = terms.sum(dim=1)
    denominator = _mean_over(valid.any(dim=1), s.dtype)
    return reduce_loss(loss, reduction, denominator=denominator, process_group=process_group)


@_LISTS.loss(
    formula=r"-\sum_i y_i \log \frac{e^{s_i}}{\sum_j e^{s_j}}",
    use_when="optax/rax softmax ranking loss; grades as weights",
    peers={
        "optax": "losses.ranking_softmax_loss (where=mask): same values, mean over lists "
        "with an item",
        "rax": "softmax_loss: grades normalised to sum 1 by default (listnet target='linear')",
    },
)
def ranking_softmax_loss(
    scores: Tensor,
    relevance: Tensor,
    *,
    mask: Tensor | None = None,
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Softmax ranking loss, as optax's ``ranking_softmax_loss``: grade-weighted softmax CE.

    Each item's log top-one probability (the log-softmax of the scores over the list's real
    items) weighted by its grade, unnormalised: a list with grades summing to ``c`` weighs
    ``c`` times a one-hot list, and a list with no relevant item gives 0 (but counts in
    ``"mean"``, as in optax). :func:`listnet_loss` with ``target="linear"`` is the same with
    the grades normalised to sum 1.

    .. math::
        \ell_q = -\sum_i y_i \log \frac{e^{s_i}}{\sum_j e^{s_j}}

    Args:
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. ``"mean"`` divides by the number of
            queries with at least one item (optax's ``jnp.mean`` with ``where``), 0 if none.

    Example:
        >>> la.ranking_softmax_loss(torch.tensor([[2.0, 1.0, 3.0]]), torch.tensor([[1.0, 0, 0]]))
        tensor(1.4076)
        >>> scores = torch.tensor([[2.0, 1.0, 0.0], [1.0, 0.5, 1.5]])
        >>> relevance = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
        >>> mask = torch.tensor([[True, True, False], [True, True, True]])
        >>> la.ranking_softmax_loss(scores, relevance, mask=mask)
        tensor(0.4968)

        These are optax's documented examples (``1.408`` and ``0.497``).

    References:
        `optax.losses.ranking_softmax_loss
        <https://optax.readthedocs.io/en/latest/api/losses.html>`_, Google DeepMind (optax).

        S. Bruch, X. Wang, M. Bendersky, M. Najork, `An Analysis of the Softmax Cross Entropy
        Loss for Learning-to-Rank with Binary Relevance
        <https://doi.org/10.1145/3341981.3344221>`_, ICTIR 2019.
    """
    s, y, valid = prepare_lists(scores, relevance, mask)
    loss = -(y * masked_log_softmax(s, valid)).sum(dim=1)
    denominator = _mean_over(valid.any(dim=1), s.dtype)
    return reduce_loss(loss, reduction, denominator=denominator, process_group=process_group)


@_LISTS.loss(
    formula=r"1 - \frac{1}{\mathrm{IDCG}} \sum_i \frac{2^{y_i} - 1}{\log_2(1 + \hat\pi_i)},\ "
    r"\hat\pi_i = 1 + \sum_{j \ne i} \sigma\!\left(\frac{s_j - s_i}{T}\right)",
    use_when="a smooth NDCG to maximise; temperature sets sharpness",
    peers={
        "TF-Ranking": "ApproxNDCGLoss: returns -NDCG (here 1 - NDCG); alpha = 1 / temperature",
        "allRank": "approxNDCGLoss: -NDCG, alpha = 1 / temperature",
    },
)
def approx_ndcg_loss(
    scores: Tensor,
    relevance: Tensor,
    *,
    mask: Tensor | None = None,
    temperature: Positive = 0.1,
    k: PositiveInt | None = None,
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""ApproxNDCG (Qin, Liu, Li 2010): one minus NDCG with ranks smoothed by sigmoids.

    Item ``i``'s rank ``1 + #{j: s_j > s_i}`` becomes ``1 + sum_{j != i} sigmoid((s_j - s_i) /
    T)`` over the list's real items; NDCG with these ranks is differentiable, and tends to
    the true NDCG as ``T -> 0`` (with distinct scores). A list without a relevant item
    (``IDCG = 0``) gives 0 and is not counted. The default ``T = 0.1`` is TF-Ranking's
    ``alpha = 10``.

    With ``k`` it is ApproxNDCG@k: ``IDCG`` is ``IDCG@k`` and an item's term counts when it
    is in the top ``k`` by the current scores (ties by slot, as :func:`lambda_loss`'s ``k``),
    discounted by its approximate rank ``hat pi_i``. The cut is by the true rank because the
    approximate rank of even the top item exceeds 1 (a cut ``hat pi_i <= k`` would drop it at
    ``k = 1``); it is a step with no gradient, the discounts inside it carry the gradient. As
    ``T -> 0`` it tends to the true NDCG@k. TF-Ranking and allRank have no ``k`` on this loss.

    .. math::
        \ell_q = 1 - \frac{1}{\mathrm{IDCG}_q} \sum_i \frac{2^{y_i} - 1}{\log_2(1 + \hat\pi_i)},
        \qquad \hat\pi_i = 1 + \sum_{j \ne i} \sigma\!\left(\frac{s_j - s_i}{T}\right)

    Args:
        temperature: ``T > 0``; smaller is closer to the true (piecewise constant) NDCG.
        k: Cut-off of NDCG@k (by the rank of the scores), or ``None`` for the whole list.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. ``"mean"`` divides by the number of
            queries with a relevant item, 0 if none.

    Example:
        >>> la.approx_ndcg_loss(scores, relevance, temperature=1.0, reduction="none")
        tensor([0.1683, 0.3889])

    References:
        T. Qin, T.-Y. Liu, H. Li, `A General Approximation Framework for Direct Optimization
        of Information Retrieval Measures <https://doi.org/10.1007/s10791-009-9124-x>`_,
        Information Retrieval 13(4), 2010.
    """
    s, y, valid = prepare_lists(scores, relevance, mask)
    g, idcg = normalised_gains(y, k)
    others = valid[:, :, None] & valid[:, None, :]
    others = others & ~torch.eye(s.shape[1], dtype=torch.bool, device=s.device)
    above = torch.sigmoid((s[:, None, :] - s[:, :, None]) / temperature)  # [q, i, j]: j over i
    rank = 1.0 + torch.where(others, above, torch.zeros_like(above)).sum(dim=2)
    terms = g * discount(rank)
    if k is not None:
        terms = torch.where(ranks_by_score(s, valid) <= k, terms, torch.zeros_like(terms))
    ndcg = terms.sum(dim=1)
    counted = idcg > 0
    loss = torch.where(counted, 1.0 - ndcg, torch.zeros_like(ndcg))
    denominator = _mean_over(counted, s.dtype)
    return reduce_loss(loss, reduction, denominator=denominator, process_group=process_group)


# --------------------------------------------------------------------------- modules


class _ListModule(LossModule):
    """A list loss's twin: ``forward(scores, relevance, mask=None)``.

    A ``mask`` given to ``forward`` replaces the one given to the constructor (a buffer) for
    that call; ragged batches pass theirs each step.
    """

    def forward(self, scores: Tensor, relevance: Tensor, mask: Tensor | None = None) -> Tensor:
        options = self.options()
        if mask is not None:
            options["mask"] = mask
        return type(self).functional(scores, relevance, **options)


class RankNetLoss(_ListModule, functional=ranknet_loss):
    """Module form of :func:`lossatlas.ranknet_loss`; ``forward(scores, relevance, mask=None)``."""


class LambdaLoss(_ListModule, functional=lambda_loss):
    """Module form of :func:`lossatlas.lambda_loss`; ``forward(scores, relevance, mask=None)``."""


class ListNetLoss(_ListModule, functional=listnet_loss):
    """Module form of :func:`lossatlas.listnet_loss`; ``forward(scores, relevance, mask=None)``."""


class ListMLELoss(_ListModule, functional=listmle_loss):
    """Module form of :func:`lossatlas.listmle_loss`; ``forward(scores, relevance, mask=None)``."""


class RankingSoftmaxLoss(_ListModule, functional=ranking_softmax_loss):
    """Module form of :func:`lossatlas.ranking_softmax_loss`; forward also takes ``mask``."""


class ApproxNDCGLoss(_ListModule, functional=approx_ndcg_loss):
    """Module form of :func:`lossatlas.approx_ndcg_loss`; forward also takes ``mask``."""
