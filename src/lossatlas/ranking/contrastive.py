"""Contrastive losses for embeddings: the pairwise margin loss and InfoNCE / NT-Xent / CLIP.

``contrastive_loss`` (Hadsell, Chopra, LeCun 2006) works on labelled pairs; ``info_nce_loss``
treats each query's own key as the positive and every other key in the batch (plus optional
extra negatives) as negatives, the loss of CPC, MoCo, SimCLR and CLIP.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example, Family, TargetKind
from lossatlas._module import LossModule
from lossatlas._options import Positive
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, safe_sqrt, upcast
from lossatlas._validation import (
    check_floating,
    check_probabilities,
    check_same_device,
    check_same_shape,
    check_shape,
    check_tensor,
    describe,
)
from lossatlas.distributed import ProcessGroup, active_group, gather_rows, rank
from lossatlas.ranking._chunks import chunk_plan, query_keys

__all__ = ["contrastive_loss", "info_nce_loss"]

_DIM = 4


def _pairs(generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float) -> Example:
    x1 = ex.normal(generator, batch, _DIM, dtype=dtype, scale=scale)
    x2 = ex.normal(generator, batch, _DIM, dtype=dtype, scale=scale)
    same = ex.binary_labels(generator, batch, dtype=dtype)
    return Example((x1, x2, same), grad_args=(0, 1))


def _perfect_pairs(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    """Similar pairs identical, dissimilar pairs 2 * sqrt(D) = 4 apart (> margin 1)."""
    x1 = ex.normal(generator, batch, _DIM, dtype=dtype, scale=scale)
    same = ex.binary_labels(generator, batch, dtype=dtype)
    return Example((x1, x1 + 2.0 * (1.0 - same)[:, None], same), grad_args=(0, 1))


_CONTRASTIVE = Family(
    tasks=("metric-learning", "ranking"),
    input_kind="embeddings",
    same_shape=(0, 1),
    twice_differentiable=True,
)


# --------------------------------------------------------------------------- contrastive


@_CONTRASTIVE.loss(
    target_kind="pair labels (1 similar, 0 dissimilar)",
    target_type=TargetKind.PROBABILITIES,
    formula=r"\tfrac12 [s\, d^2 + (1 - s) \max(0, m - d)^2],\ d = \|x_1 - x_2\|_2",
    properties={"non_negative", "zero_at_perfect", "symmetric"},
    examples=_pairs,
    perfect=_perfect_pairs,
    use_when="siamese embeddings from labelled similar/dissimilar pairs",
)
def contrastive_loss(
    x1: Tensor,
    x2: Tensor,
    same: Tensor,
    *,
    margin: Positive = 1.0,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Pairwise contrastive loss: pull similar pairs together, push others ``margin`` apart.

    Hadsell, Chopra and LeCun (2006), with their factor 1/2 (as Caffe's ``ContrastiveLoss``
    layer): a similar pair pays half its squared Euclidean distance, a dissimilar one half the
    square of how far its distance falls short of ``margin``. ``same`` may be soft (in [0, 1]),
    interpolating the two terms.

    The distance is ``d = ||x1 - x2||_2`` over the last dimension. At ``d = 0`` the dissimilar
    term's gradient is taken as 0 (a subgradient; the norm itself has none there), so
    identical embeddings give finite gradients; the similar term uses ``d^2`` directly and is
    smooth everywhere.

    .. math::
        \ell_n = \tfrac{1}{2}\left[s_n d_n^2 + (1 - s_n) \max(0,\ \mathrm{margin} - d_n)^2\right],
        \qquad d_n = \lVert x^{(1)}_n - x^{(2)}_n \rVert_2

    Args:
        x1: Embeddings ``(N, D)`` (or ``(..., D)``).
        x2: Embeddings, same shape.
        same: 1 for a similar pair, 0 for a dissimilar one (floating in [0, 1], or bool),
            shape ``x1.shape[:-1]``.
        margin: Distance dissimilar pairs should exceed, positive.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of
            pairs.

    Returns:
        Shape ``x1.shape[:-1]`` for ``"none"``, else a scalar.

    Raises:
        TypeError: Non-floating embeddings, a ``same`` that is neither floating nor bool.
        ValueError: Embeddings of different shapes or 0-dim, a ``same`` of the wrong shape or
            outside [0, 1], ``margin <= 0``.

    Example:
        >>> x1 = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
        >>> x2 = torch.tensor([[0.6, 0.8], [0.3, 0.4], [3.0, 4.0]])
        >>> la.contrastive_loss(x1, x2, torch.tensor([1.0, 0.0, 0.0]), reduction="none")
        tensor([0.5000, 0.1250, 0.0000])

    References:
        R. Hadsell, S. Chopra, Y. LeCun, "Dimensionality Reduction by Learning an Invariant
        Mapping", CVPR 2006, https://doi.org/10.1109/CVPR.2006.100
    """
    check_same_device(("x1", x1), ("x2", x2), ("same", same))
    check_floating("x1", x1)
    check_floating("x2", x2)
    if x1.dim() == 0:
        raise ValueError("x1 must have an embedding dimension, got a 0-dim tensor")
    check_same_shape("x1", x1, "x2", x2)
    check_tensor("same", same)
    if not (same.is_floating_point() or same.dtype == torch.bool):
        raise TypeError(
            f"same must be a floating or bool tensor of pair labels, got {describe(same)}"
        )
    if same.shape != x1.shape[:-1]:
        raise ValueError(
            f"same must have shape {tuple(x1.shape[:-1])} (one label per pair) for embeddings "
            f"of shape {tuple(x1.shape)}, got {tuple(same.shape)}"
        )
    if same.is_floating_point():
        check_probabilities("same", same)
    dtype = compute_dtype(x1, x2, same)
    s = same.to(dtype)
    squared = (upcast(x1, dtype) - upcast(x2, dtype)).square().sum(dim=-1)
    distance = safe_sqrt(squared)
    loss = 0.5 * (s * squared + (1.0 - s) * F.relu(margin - distance).square())
    return reduce_loss(loss, reduction)


# --------------------------------------------------------------------------- InfoNCE


@_CONTRASTIVE.loss(
    input_kind="embeddings (queries)",
    target_kind="embeddings (keys; row i is query i's positive)",
    target_type=TargetKind.EMBEDDINGS,
    formula=r"-\log \frac{e^{q_i \cdot k_i / t}}{\sum_j e^{q_i \cdot k_j / t}}",
    properties={"non_negative"},
    examples=query_keys,
    use_when="self-supervised or paired (CLIP) embeddings, in-batch negatives",
)
def info_nce_loss(
    query: Tensor,
    key: Tensor,
    *,
    temperature: Positive = 0.07,
    symmetric: bool = False,
    negatives: Tensor | None = None,
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""InfoNCE with in-batch negatives: each query must pick its own key among all keys.

    Queries and keys are L2-normalised; the logits are cosine similarities over
    ``temperature``; query ``i``'s positive is key ``i`` and the other ``N - 1`` keys (and the
    ``M`` rows of ``negatives``, if given, e.g. a MoCo queue) are its negatives. So it equals
    ``cross_entropy(q_n @ k_n.T / t, arange(N))``. ``symmetric=True`` is CLIP's loss: the mean
    of the query-to-key and key-to-query directions (the extra ``negatives`` are candidate
    keys, so they join the query-to-key direction only). SimCLR's NT-Xent over two views is
    the symmetric form with one difference: it also counts the other samples of the *same*
    view as negatives.

    Computed as ``logsumexp(logits) - logit_ii``; cosine logits are bounded by
    ``1 / temperature``, so the loss is finite for any temperature (``0.01`` included) and any
    embeddings, also identical or opposite ones. A zero vector normalises to 0.

    .. math::
        \ell_i = -\log \frac{e^{\hat q_i \cdot \hat k_i / t}}
                 {\sum_j e^{\hat q_i \cdot \hat k_j / t} + \sum_m e^{\hat q_i \cdot \hat n_m / t}}

    Args:
        query: Embeddings ``(N, D)``.
        key: Embeddings ``(N, D)``; row ``i`` is query ``i``'s positive.
        temperature: Positive real; smaller is sharper (CLIP learns ~0.01, MoCo uses 0.07).
        symmetric: Average with the key-to-query direction (CLIP).
        negatives: Extra negative keys ``(M, D)`` shared by every query, or ``None``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by ``N``.
        process_group: ``None`` (in-batch negatives of this process) or a
            ``torch.distributed`` group: each rank's queries are scored against the keys of
            every rank (gathered with gradient, shards of any size), the positive of local
            query ``i`` being key ``offset + i`` with ``offset`` the rows of the lower ranks;
            the symmetric form gathers the queries too. ``negatives`` are used as given on
            each rank (a MoCo queue is the same on every rank). The value on every rank and,
            after DDP's gradient averaging, the gradients equal one process on the
            concatenated batch (see :mod:`lossatlas.distributed`); ``"none"`` gives this
            rank's rows. The shard sizes are read on the host, so ``torch.compile`` breaks the
            graph there (``fullgraph=True`` refuses the group path).

    Returns:
        Shape ``(N,)`` for ``"none"`` (with ``symmetric``, each sample's mean of the two
        directions), else a scalar.

    Raises:
        TypeError: Non-floating embeddings, a non-bool ``symmetric``.
        ValueError: ``query`` not ``(N, D)``, ``key`` of another shape, ``negatives`` not
            ``(M, D)``, ``temperature <= 0``.

    Example:
        >>> query = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
        >>> key = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
        >>> la.info_nce_loss(query, key, temperature=1.0)
        tensor(0.3133)

        Two queries whose keys are exactly their own directions.

    References:
        A. van den Oord, Y. Li, O. Vinyals, "Representation Learning with Contrastive
        Predictive Coding", 2018, https://arxiv.org/abs/1807.03748

        A. Radford et al., "Learning Transferable Visual Models From Natural Language
        Supervision" (CLIP), ICML 2021, https://arxiv.org/abs/2103.00020

        T. Chen et al., "A Simple Framework for Contrastive Learning of Visual
        Representations" (SimCLR), ICML 2020, https://arxiv.org/abs/2002.05709
    """
    check_floating("query", query)
    check_floating("key", key)
    check_shape("query", query, (None, None), "(N, D)")
    check_same_shape("query", query, "key", key)
    if negatives is not None:
        check_floating("negatives", negatives)
        check_shape("negatives", negatives, (None, query.shape[1]), "(M, D) with the queries' D")
    dtype = compute_dtype(query, key, negatives)
    group = active_group(process_group)
    # Autocast would run the similarity products in bfloat16 and return a bfloat16 loss.
    with torch.autocast(query.device.type, enabled=False):
        q = F.normalize(upcast(query, dtype), dim=1)
        k = F.normalize(upcast(key, dtype), dim=1)
        n = None if negatives is None else F.normalize(upcast(negatives, dtype), dim=1)
        if group is not None:
            loss = _info_nce_across(
                q, k, n, temperature=temperature, symmetric=symmetric, group=group
            )
            return reduce_loss(loss, reduction, process_group=group)
        loss = info_nce_rows(q, k, n, temperature=temperature, symmetric=symmetric)
    return reduce_loss(loss, reduction)


def _info_nce_across(
    q: Tensor,
    k: Tensor,
    negatives: Tensor | None,
    *,
    temperature: float,
    symmetric: bool,
    group: ProcessGroup,
) -> Tensor:
    """Per-row InfoNCE of this rank's normalised queries against every rank's keys."""
    keys, sizes = gather_rows(k, group, name="key")
    offset = sum(sizes[: rank(group)])
    rows = torch.arange(q.shape[0], device=q.device)
    scores = q @ keys.T / temperature
    positive = scores[rows, offset + rows]
    logits = scores if negatives is None else torch.cat([scores, q @ negatives.T / temperature], 1)
    loss = torch.logsumexp(logits, dim=1) - positive
    if symmetric:  # each local key against every rank's queries
        queries, _ = gather_rows(q, group, name="query")
        loss = 0.5 * (loss + torch.logsumexp(k @ queries.T / temperature, dim=1) - positive)
    return loss


def info_nce_rows(
    q: Tensor,
    k: Tensor,
    negatives: Tensor | None = None,
    *,
    temperature: float,
    symmetric: bool = False,
    chunk: int | None = None,
) -> Tensor:
    """Per-query InfoNCE of normalised embeddings, never holding the ``N x N`` logits.

    ``q`` ``(N, D)`` and ``k`` ``(N, D)`` are already L2-normalised, row ``i`` of ``k`` is query
    ``i``'s positive, ``negatives`` ``(M, D)`` (normalised) are extra keys. The keys are taken
    ``chunk`` at a time (default: about 32 MiB of float32 logits); each chunk gives its part of
    every query's log-sum-exp (combined by a final ``logsumexp``) and, for ``symmetric``, the
    complete key-to-query log-sum-exp of its own keys. Each chunk runs under activation
    checkpointing, so backward recomputes one chunk of logits at a time: memory grows with
    ``N x chunk``, the value and the gradient (to any order) are those of the plain formula.

    Returns:
        The ``(N,)`` losses (with ``symmetric``, the mean of the two directions).
    """
    num_queries = q.shape[0]
    positive = (q * k).sum(dim=1) / temperature
    rows: list[Tensor] = []
    columns: list[Tensor] = []
    num_keys = k.shape[0] + (0 if negatives is None else negatives.shape[0])
    width, run, compiling = chunk_plan(num_queries, num_keys, chunk)
    for keys, in_batch in ((k, True), (negatives, False)):
        if keys is None:
            continue
        chunks = [keys] if compiling else keys.split(width)
        for chunk_keys in chunks:
            row, column = run(_key_chunk, q, chunk_keys, temperature, symmetric and in_batch)
            rows.append(row)
            columns.append(column)
    if not rows:  # no keys at all (an empty batch)
        return positive
    lse = rows[0] if len(rows) == 1 else torch.logsumexp(torch.stack(rows, dim=1), dim=1)
    loss = lse - positive
    if symmetric:
        key_lse = columns[0] if len(columns) == 1 else torch.cat(columns)
        loss = 0.5 * (loss + key_lse[:num_queries] - positive)
    return loss


def _key_chunk(q: Tensor, keys: Tensor, temperature: float, columns: bool) -> tuple[Tensor, Tensor]:
    """Each query's log-sum-exp over this chunk of keys, and each key's over all queries."""
    logits = q @ keys.T / temperature
    row = torch.logsumexp(logits, dim=1)
    column = torch.logsumexp(logits, dim=0) if columns else logits.new_zeros(0)
    return row, column


# --------------------------------------------------------------------------- modules


class ContrastiveLoss(LossModule, functional=contrastive_loss):
    """Module form of :func:`lossatlas.contrastive_loss`."""


class InfoNCELoss(LossModule, functional=info_nce_loss):
    """Module form of :func:`lossatlas.info_nce_loss`; ``forward(query, key, negatives=None)``.

    ``negatives`` given to the constructor is a fixed bank (a buffer); given to ``forward`` it
    replaces it for that call (a MoCo queue that changes every step).
    """

    def forward(self, query: Tensor, key: Tensor, negatives: Tensor | None = None) -> Tensor:
        options = self.options()
        if negatives is not None:
            options["negatives"] = negatives
        return info_nce_loss(query, key, **options)
